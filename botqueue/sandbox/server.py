"""The sandbox as an aiohttp application, a context-managed server, and a serve-forever entry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from .api import SANDBOX, Sandbox, bot_api, not_found
from .control import PREFIX, control_app
from .state import SandboxState
from .world import DEFAULT_WORLD, WorldSpec, load_world_file, parse_world

log = logging.getLogger(__name__)
"""The sandbox's logger (the listening address at start)."""


def _world(world: WorldSpec | Mapping[str, Any] | None) -> WorldSpec:
    if isinstance(world, WorldSpec):
        return world
    return parse_world(DEFAULT_WORLD if world is None else dict(world))


async def _release_hung_calls(app: web.Application) -> None:
    app[SANDBOX].release_hung_calls()


def create_app(world: WorldSpec | Mapping[str, Any] | None = None) -> web.Application:
    """The sandbox application: the Bot API, the control API and a Telegram-style 404."""
    app = web.Application()
    app[SANDBOX] = Sandbox(_world(world))
    app.add_subapp(PREFIX, control_app())
    app.router.add_route("*", "/bot{token}/{method}", bot_api)
    app.router.add_route("*", "/{tail:.*}", not_found)
    app.on_shutdown.append(_release_hung_calls)
    return app


class SandboxServer:
    """The sandbox on a real socket: ``async with SandboxServer() as sandbox: ...``.

    Port 0 (the default) picks a free port; ``url`` tells which one.
    """

    def __init__(
        self,
        world: WorldSpec | Mapping[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        access_log: bool = False,
    ) -> None:
        self.app = create_app(world)
        self.host = host
        self.port = port
        self._access_log = access_log
        self._runner: web.AppRunner | None = None

    @property
    def sandbox(self) -> Sandbox:
        """The running sandbox: state, fault plan and flood control."""
        return self.app[SANDBOX]

    @property
    def state(self) -> SandboxState:
        """The world as it is now, for in-process inspection."""
        return self.sandbox.state

    @property
    def url(self) -> str:
        """The server's root, such as http://127.0.0.1:8081."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What python-telegram-bot takes as ``base_url``: the root plus "/bot"."""
        return f"{self.url}/bot"

    @property
    def token(self) -> str:
        """The token of the world's first bot (DEFAULT_TOKEN in the default world)."""
        return self.sandbox.initial.bots[0].token

    async def start(self) -> None:
        """Bind the socket and start answering."""
        # handler_cancellation: a client that gives up cancels its call (hangs, latency).
        runner = web.AppRunner(
            self.app,
            handler_cancellation=True,
            shutdown_timeout=1.0,
            access_log=logging.getLogger("aiohttp.access") if self._access_log else None,
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])

    async def aclose(self) -> None:
        """Stop answering and close every connection; hung calls are released first."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


async def run_sandbox(
    host: str = "127.0.0.1",
    port: int = 8081,
    world_file: str | Path | None = None,
    *,
    on_ready: Callable[[SandboxServer], None] | None = None,
) -> None:
    """Serve the sandbox until cancelled; ``on_ready`` is called once it is listening."""
    world = load_world_file(world_file) if world_file else None
    async with SandboxServer(world, host=host, port=port, access_log=True) as server:
        log.info("sandbox listening on %s", server.url)
        if on_ready is not None:
            on_ready(server)
        await asyncio.Event().wait()
