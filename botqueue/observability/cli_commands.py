"""CLI pieces of observability: the ``health`` command and the work behind ``stats`` and
``worker --reload`` (botqueue/cli.py parses, these delegate)."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from typing import Any

import click

from ..config import load_settings
from ..transports import Transport, open_transport


def health_url(url: str | None, ready: bool) -> str:
    """The URL to check: ``url``, else the configured metrics host and port.

    Raises:
        click.UsageError: neither --url nor BOTQUEUE_METRICS_PORT is given.
    """
    if url:
        return url
    settings = load_settings()
    if settings.botqueue_metrics_port is None:
        raise click.UsageError("give --url, or set BOTQUEUE_METRICS_PORT")
    host = settings.botqueue_metrics_host
    # A server bound to every interface is reached on loopback from inside its container.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.botqueue_metrics_port}/{'readyz' if ready else 'healthz'}"


def check(url: str, timeout: float) -> tuple[bool, str]:
    """GET ``url``: (answered 200, one line saying what it answered)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"{response.status} {response.read().decode()}"
    except urllib.error.HTTPError as error:
        return False, f"{error.code} {error.read().decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as error:
        return False, f"no answer: {error}"


def add_observability_commands(cli: click.Group) -> None:
    """Register ``health`` on the botqueue command group."""

    @cli.command()
    @click.option("--url", help="URL to check, e.g. http://127.0.0.1:9100/readyz.")
    @click.option(
        "--ready",
        is_flag=True,
        help="Without --url: check /readyz (default /healthz) on BOTQUEUE_METRICS_HOST:PORT.",
    )
    @click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds.")
    @click.option("--quiet", "-q", is_flag=True, help="Print nothing; only the exit code.")
    def health(url: str | None, ready: bool, timeout: float, quiet: bool) -> None:
        """Exit 0 when a worker's health endpoint answers 200, else 1 (container checks)."""
        ok, said = check(health_url(url, ready), timeout)
        if not quiet:
            click.echo(said.strip(), err=not ok)
        sys.exit(0 if ok else 1)


def outcomes_transport(url: str | None) -> Transport | None:
    """The outcomes queue to show in ``stats``, if one is configured."""
    if not url:
        return None
    from .setup import outcomes_url

    return open_transport(outcomes_url(url, load_settings()))


def child_arguments(ctx: click.Context, skip: frozenset[str]) -> list[str]:
    """The command's options as given, back in argv form, without those named in ``skip``
    (so ``worker --reload`` can start ``worker`` with everything else)."""
    argv: list[str] = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in skip or param.name is None:
            continue
        value: Any = ctx.params.get(param.name)
        if param.is_flag:
            if value:
                argv.append(param.opts[0])
        elif value is not None:
            argv.extend([param.opts[0], str(value)])
    return argv
