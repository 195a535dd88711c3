"""``botqueue dashboard``: the operator's web dashboard over the configured queue."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Any

import click

from .common import metrics_url_option, queue_options, run_sync, settings_from, transport_for

TOKEN_ENV = "BOTQUEUE_DASHBOARD_TOKEN"


@click.command()
@queue_options
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    envvar="BOTQUEUE_DASHBOARD_HOST",
    help="Address to bind [env BOTQUEUE_DASHBOARD_HOST]; beyond loopback needs --allow-remote.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8090,
    show_default=True,
    envvar="BOTQUEUE_DASHBOARD_PORT",
    help="Port [env BOTQUEUE_DASHBOARD_PORT].",
)
@metrics_url_option(
    "A worker's /metrics URL, for rates and the bot's state (repeat for several workers)."
)
@click.option(
    "--refresh",
    type=click.FloatRange(min=0.1, max=3600),
    default=5.0,
    show_default=True,
    help="Seconds between the dashboard's reads of the queue (one stats call each).",
)
@click.option(
    "--allow-remote",
    is_flag=True,
    help=f"Allow a non-loopback --host; requires {TOKEN_ENV}.",
)
def dashboard(
    host: str,
    port: int,
    metrics_urls: tuple[str, ...],
    refresh: float,
    allow_remote: bool,
    **flags: Any,
) -> None:
    """Serve the web dashboard: the queue at a glance, dead letters to review and redrive.

    The token (for remote access) is read from BOTQUEUE_DASHBOARD_TOKEN only, never a flag,
    so it stays out of process listings and shell history.
    """
    from ..dashboard import check_binding

    token = os.environ.get(TOKEN_ENV) or None
    # Refused before anything else is set up: a wrong binding is a one-line usage error.
    check_binding(host, allow_remote, token)
    settings = settings_from(**flags)
    from ..dashboard import serve
    from ..logs import register_secret

    register_secret(token)

    async def run() -> None:
        transport = transport_for(settings)
        started = asyncio.Event()
        serving = asyncio.ensure_future(
            serve(
                transport,
                host=host,
                port=port,
                metrics_urls=list(metrics_urls),
                refresh=refresh,
                token=token,
                allow_remote=allow_remote,
                started=started,
            )
        )
        loop = asyncio.get_running_loop()
        # SIGTERM (systemd, docker stop) and Ctrl+C stop the server cleanly: exit 0.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, serving.cancel)
        try:
            listening = asyncio.ensure_future(started.wait())
            await asyncio.wait({serving, listening}, return_when=asyncio.FIRST_COMPLETED)
            listening.cancel()
            if started.is_set():
                url = f"http://{_url_host(host)}:{port}/"
                click.echo(f"botqueue dashboard on {url} (Ctrl+C to stop)")
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        finally:
            await transport.aclose()

    run_sync(run())


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
