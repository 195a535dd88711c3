"""``botqueue health``, and the live table behind ``botqueue stats --watch``."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING

import click

from .common import run_sync, transport_for

if TYPE_CHECKING:
    from ..config import Settings


@click.command()
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
    from ..observability.health_check import check, health_url

    url = url or health_url(ready)
    if url is None:
        raise click.UsageError("give --url, or set BOTQUEUE_METRICS_PORT")
    ok, said = check(url, timeout)
    if not quiet:
        click.echo(said.strip(), err=not ok)
    sys.exit(0 if ok else 1)


def watch_stats(settings: Settings, interval: float, metrics_urls: list[str]) -> None:
    """Show the live table of ``stats --watch`` until Ctrl+C."""
    from ..observability.stats_view import outcomes_transport, watch

    async def run() -> None:
        transport = transport_for(settings)
        outcomes = outcomes_transport(settings.bot_operations_outcomes_url)
        try:
            await watch(transport, outcomes, metrics_urls, interval=interval)
        finally:
            await transport.aclose()
            if outcomes is not None:
                await outcomes.aclose()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how --watch ends
        run_sync(run())
