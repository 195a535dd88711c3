"""Liveness and readiness of a worker, as /healthz and /readyz report them.

The health server runs on a thread of its own (see server.py), so it can still answer when
the worker's event loop is blocked, and say so. Everything here that the server thread
calls only reads values the worker's loop writes (single assignments, safe under the GIL).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ..logs import redact_secrets
from ..service import BotState
from ..transports.base import Transport

Report = tuple[bool, dict[str, Any]]
"""(healthy, JSON-ready details) as an endpoint answers it."""


class Polling(Protocol):
    """What liveness needs of a consumer: when its receive loop last went round."""

    last_poll: float


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One readiness probe of the queue: when (monotonic), whether it answered, and why not."""

    at: float
    ok: bool
    error: str | None = None


class HealthState:
    """Liveness (loop responsive, receive loop polling) and readiness (queue reachable, bot
    token accepted, not shutting down) of one worker.

    Args:
        poll_bound: seconds the receive loop may go without an iteration (beyond a long poll).
        loop_bound: seconds the event loop may go without running its heartbeat.
        ready_cache: seconds a queue probe's answer is reused.
        probe_timeout: seconds a queue probe may take before it counts as unreachable.
        answer_within: seconds /readyz waits for a fresh probe before answering from the last.
    """

    def __init__(
        self,
        *,
        poll_bound: float = 80.0,
        loop_bound: float = 5.0,
        ready_cache: float = 1.5,
        probe_timeout: float = 2.0,
        answer_within: float = 0.05,
    ) -> None:
        self.poll_bound = poll_bound
        self.loop_bound = loop_bound
        self.ready_cache = ready_cache
        self.probe_timeout = probe_timeout
        self.answer_within = answer_within
        self.service_started = False
        self.stopping = False
        self.bot_state: BotState | None = None
        """The service's bot-wide conditions: a paused bot is alive but not ready."""
        self.consumer: Polling | None = None
        self.transport: Transport | None = None
        self._created = time.monotonic()
        self._beat = self._created
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._result: ProbeResult | None = None
        self._probe: concurrent.futures.Future[None] | None = None

    # -- on the worker's loop -------------------------------------------------------------

    def start(self) -> None:
        """Start the event-loop heartbeat (call on the worker's loop)."""
        self._loop = asyncio.get_running_loop()
        self._beat = time.monotonic()
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat_loop(), name="botqueue-heartbeat")

    def attach(self, consumer: Polling, transport: Transport) -> None:
        """Watch this consumer's receive loop and probe this transport."""
        self.consumer = consumer
        self.transport = transport

    async def _beat_loop(self) -> None:
        tick = min(0.25, self.loop_bound / 4)
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(tick)

    async def _probe_queue(self) -> None:
        if self.transport is None:
            self._result = ProbeResult(time.monotonic(), False, "queue not opened yet")
            return
        try:
            await asyncio.wait_for(self.transport.stats(), self.probe_timeout)
        except Exception as error:
            text = redact_secrets(f"{type(error).__name__}: {error}")
            self._result = ProbeResult(time.monotonic(), False, text)
        else:
            self._result = ProbeResult(time.monotonic(), True)

    async def aclose(self) -> None:
        """Stop the heartbeat."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None

    # -- on the server's thread -----------------------------------------------------------

    def liveness(self) -> Report:
        """Healthy while the loop's heartbeat is recent and the receive loop has polled."""
        now = time.monotonic()
        lag = now - self._beat
        last_poll = self.consumer.last_poll if self.consumer is not None else self._created
        poll_age = now - last_poll
        problems = []
        if lag > self.loop_bound:
            problems.append(f"event loop unresponsive for {lag:.1f} s")
        if poll_age > self.poll_bound:
            problems.append(f"receive loop has not polled for {poll_age:.1f} s")
        return not problems, {
            "status": "ok" if not problems else "unhealthy",
            "loopHeartbeatAgeSeconds": round(lag, 3),
            "pollAgeSeconds": round(poll_age, 3),
            "problems": problems,
        }

    def _start_probe(self) -> concurrent.futures.Future[None] | None:
        if self._probe is not None and not self._probe.done():
            return self._probe
        loop = self._loop
        if loop is None or loop.is_closed():
            return None
        self._probe = asyncio.run_coroutine_threadsafe(self._probe_queue(), loop)
        return self._probe

    async def readiness(self) -> Report:
        """Ready when the token was accepted, the queue answered a recent probe and the worker
        is not shutting down. Answers within ``answer_within`` seconds of waiting: a slow
        probe goes on in the background and the last answer is used meanwhile."""
        result = self._result
        if result is None or time.monotonic() - result.at > self.ready_cache:
            probe = self._start_probe()
            if probe is not None:
                await _wait_briefly(probe, self.answer_within)
            result = self._result
        problems = []
        if not self.service_started:
            problems.append("bot service not started (token not yet accepted)")
        if self.stopping:
            problems.append("shutting down")
        pause = self.bot_state.unavailable() if self.bot_state is not None else None
        if pause is not None:
            # Not ready, so no new work is routed here; liveness stays healthy, so that an
            # orchestrator does not restart a worker for Telegram's outage.
            problems.append(pause.describe())
        stale = self.ready_cache + self.probe_timeout
        if result is None or time.monotonic() - result.at > stale:
            problems.append("queue probe has not answered")
        elif not result.ok:
            problems.append(f"queue unreachable: {result.error}")
        return not problems, {
            "status": "ready" if not problems else "not ready",
            "problems": problems,
        }


async def _wait_briefly(future: concurrent.futures.Future[None], seconds: float) -> None:
    """Wait up to ``seconds`` for a future of another loop, without cancelling it."""
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def wake(_: object) -> None:
        # This loop may be gone by the time a slow probe finishes.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(done.set)

    future.add_done_callback(wake)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), seconds)
