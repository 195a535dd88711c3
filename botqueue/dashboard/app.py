"""The dashboard's aiohttp application: state, middlewares, templates, routes, and serving.

``create_app`` builds it over a transport the caller owns; ``serve`` runs it until cancelled.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from ..errors import ConfigurationError
from ..transports.base import Transport
from . import dead_letters, overview
from .poller import OverviewPoller
from .security import Guard, auth_middleware, headers_middleware, session_middleware
from .state import DASHBOARD, Dashboard

PACKAGE = Path(__file__).resolve().parent


def create_app(
    transport: Transport,
    *,
    metrics_urls: Sequence[str] = (),
    refresh: float = 5.0,
    token: str | None = None,
) -> web.Application:
    """The dashboard over ``transport`` (not closed by the app); ``token`` turns auth on."""
    if refresh <= 0:
        raise ConfigurationError("the dashboard's refresh interval must be positive")
    guard = Guard(token or None)
    state = Dashboard(transport, OverviewPoller(transport, metrics_urls, refresh), guard)
    app = web.Application(
        middlewares=[headers_middleware, auth_middleware(guard), session_middleware(guard)],
        client_max_size=1024 * 1024,
    )
    app[DASHBOARD] = state
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(PACKAGE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        default_helpers=False,
    )
    env.filters["age"] = overview.format_age
    env.filters["timestamp"] = overview.format_timestamp
    app.router.add_get("/", overview.index)
    app.router.add_get("/api/overview", overview.api)
    app.router.add_get("/dead-letters", dead_letters.table)
    app.router.add_post("/dead-letters/confirm", dead_letters.confirm)
    app.router.add_post("/dead-letters/redrive", dead_letters.redrive)
    app.router.add_post("/dead-letters/purge", dead_letters.purge)
    app.router.add_get("/dead-letters/{message_id}", dead_letters.detail)
    app.router.add_static("/static/", PACKAGE / "static")

    async def start_polling(app: web.Application) -> None:
        await app[DASHBOARD].poller.start()

    async def stop_polling(app: web.Application) -> None:
        await app[DASHBOARD].poller.stop()

    app.on_startup.append(start_polling)
    app.on_cleanup.append(stop_polling)
    return app


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def check_binding(host: str, allow_remote: bool, token: str | None) -> None:
    """Refuse a non-loopback host without ``--allow-remote``, and remote access without a token.

    Raises:
        ConfigurationError: with a one-line reason.
    """
    if is_loopback(host):
        return
    if not allow_remote:
        raise ConfigurationError(
            f"--host {host} is not a loopback address: add --allow-remote (and set "
            "BOTQUEUE_DASHBOARD_TOKEN) to serve the dashboard beyond this machine"
        )
    if not token:
        raise ConfigurationError(
            "--allow-remote needs BOTQUEUE_DASHBOARD_TOKEN set: a remote dashboard asks for it"
        )


async def serve(
    transport: Transport,
    *,
    host: str = "127.0.0.1",
    port: int = 8090,
    metrics_urls: Sequence[str] = (),
    refresh: float = 5.0,
    token: str | None = None,
    allow_remote: bool = False,
    started: asyncio.Event | None = None,
) -> None:
    """Serve the dashboard until cancelled (the transport is left open for the caller).

    Raises:
        ConfigurationError: the binding is refused (see :func:`check_binding`), or the
            address cannot be listened on (a port in use).
    """
    check_binding(host, allow_remote, token)
    app = create_app(transport, metrics_urls=metrics_urls, refresh=refresh, token=token)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as error:  # in use, or not an address of this machine
            reason = error.strerror or str(error)
            raise ConfigurationError(f"cannot listen on {host}:{port}: {reason}") from None
        if started is not None:
            started.set()
        await asyncio.Event().wait()  # until cancelled
    finally:
        await runner.cleanup()
