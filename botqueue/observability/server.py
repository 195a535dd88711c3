"""One small HTTP server per worker: /metrics, /healthz and /readyz.

It runs its own event loop on a daemon thread. A blocked worker loop therefore cannot make
the health check time out (it answers 503 and says why), and rendering a scrape never takes
time from the loop that processes messages.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from ..errors import ConfigurationError
from .health import HealthState

_START_TIMEOUT = 10.0


class ObservabilityServer:
    """Serves a registry's metrics and a worker's health on ``host:port`` (port 0: any free).

    ``start()`` returns once the port is bound; ``stop()`` shuts the server down.
    """

    def __init__(
        self,
        health: HealthState,
        registry: CollectorRegistry | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.health = health
        self.registry = registry
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._bound = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The server's root URL (with the port actually bound)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Start serving on a background thread.

        Raises:
            ConfigurationError: the address cannot be bound (port in use, bad host).
        """
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="botqueue-metrics", daemon=True)
        self._thread.start()
        if not self._bound.wait(_START_TIMEOUT) or self._error is not None:
            self._thread.join(1.0)
            self._thread = None
            raise ConfigurationError(
                f"BOTQUEUE_METRICS_PORT: cannot listen on {self.host}:{self.port}: {self._error}"
            )

    def stop(self) -> None:
        """Stop serving and wait for the thread (blocking; at most a few seconds)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or loop is None or stop is None:
            return
        loop.call_soon_threadsafe(stop.set)
        thread.join(5.0)
        self._thread = None

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:  # reported to start(), which is waiting for the bind
            self._error = error
            self._bound.set()
        finally:
            loop.close()

    def app(self) -> web.Application:
        """The aiohttp application with the three routes."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        # No access log: a scrape every few seconds would drown the worker's own lines.
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = _bound_port(runner, self.port)
            self._bound.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _metrics(self, request: web.Request) -> web.Response:
        if self.registry is None:
            raise web.HTTPNotFound(text="metrics are off\n")
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        response = web.Response(body=encoder(self.registry))
        response.headers["Content-Type"] = content_type
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        return _report(*self.health.liveness())

    async def _readyz(self, request: web.Request) -> web.Response:
        return _report(*await self.health.readiness())


def _report(ok: bool, details: dict[str, Any]) -> web.Response:
    return web.json_response(details, status=200 if ok else 503)


def _bound_port(runner: web.AppRunner, fallback: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return fallback
