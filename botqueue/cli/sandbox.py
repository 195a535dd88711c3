"""``botqueue sandbox`` (a local Telegram Bot API server) and ``botqueue demo`` (the whole
pipeline against it): development without a real bot."""

from __future__ import annotations

import contextlib
import ipaddress
import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import run_sync

if TYPE_CHECKING:
    from ..sandbox import SandboxServer

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
"""Host names that always mean this machine."""


def is_loopback(host: str) -> bool:
    """Whether a host name or address only reaches this machine."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ready(server: SandboxServer) -> None:
    click.echo(f"Telegram Bot API sandbox on {server.url}", err=True)
    click.echo(f"  bot API base: {server.api_base}   token: {server.token}", err=True)
    click.echo(f"  control API:  {server.url}/_sandbox/   (Ctrl-C stops)", err=True)


async def serve(host: str, port: int, world_file: Path | None) -> None:
    """Run the sandbox until SIGINT or SIGTERM, then stop cleanly."""
    import asyncio
    import signal

    from ..sandbox.server import run_sandbox

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
            loop.add_signal_handler(signum, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await run_sandbox(host, port, world_file, on_ready=_ready)


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    default=8081,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind (0 picks a free one).",
)
@click.option(
    "--world",
    "world_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="World file (JSON); the built-in world if omitted.",
)
@click.option(
    "--allow-remote", is_flag=True, help="Allow binding an address other machines can reach."
)
def sandbox(host: str, port: int, world_file: Path | None, allow_remote: bool) -> None:
    """Run a local Telegram Bot API server (no real bot or network needed)."""
    if not is_loopback(host) and not allow_remote:
        raise click.UsageError(
            f"{host} is not a loopback address; the sandbox has no authentication, "
            "so pass --allow-remote to expose it anyway"
        )
    if world_file is not None:
        from pydantic import ValidationError

        from ..sandbox.world import load_world_file

        try:
            load_world_file(world_file)
        except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as error:
            raise click.BadParameter(str(error), param_hint="--world") from None
    with contextlib.suppress(KeyboardInterrupt):
        try:
            run_sync(serve(host, port, world_file))
        except OSError as error:
            raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None


@click.command()
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the demo's queue in this file (default: a temporary one).",
)
def demo(db: Path | None) -> None:
    """Run the pipeline end to end on the embedded queue with a simulated bot."""
    from ..demo import main as demo_main
    from ..logs import configure_logging

    configure_logging("warning")
    demo_main(db)
