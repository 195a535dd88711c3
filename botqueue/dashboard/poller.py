"""The overview's one background poller: a stats call per refresh interval, an hour of history.

Pages and ``/api/overview`` only read the snapshot the poller keeps, already in its JSON form,
so the queue sees one ``stats()`` call per interval however many tabs are open.

Operations per second come from the workers' ``botqueue_operation_duration_seconds_count``
(attempts, every outcome) when /metrics URLs are given; otherwise from the queue itself: the
fall of visible + in-flight per second between two polls (0 while the queue grows), which is a
lower bound, since what producers add in between hides what workers took.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import aiohttp
import structlog

from ..logs import redact_secrets
from ..transports.base import QueueStats, Transport
from . import workers

log = structlog.get_logger("botqueue.dashboard")

HISTORY_SECONDS = 3600.0
DEPTH_ALARM = 1000
"""The spec's CloudWatch alarms: queue depth > 1000, oldest message > 5 min, DLQ depth > 0."""
AGE_ALARM_SECONDS = 300.0
STATS_TIMEOUT_SECONDS = 10.0
"""A stats call that takes longer is recorded as an error (the next interval tries again)."""


def alarms_of(stats: QueueStats | None) -> dict[str, bool]:
    """Which of the spec's alarm thresholds the figures cross."""
    if stats is None:
        return {"visible": False, "in_flight": False, "dead_letters": False, "oldest_age": False}
    return {
        "visible": stats.visible > DEPTH_ALARM,
        "in_flight": False,  # the spec sets no threshold on messages being processed
        "dead_letters": stats.dead_letters > 0,
        "oldest_age": stats.oldest_age_seconds > AGE_ALARM_SECONDS,
    }


def describe(error: BaseException) -> str:
    """An error as one line naming its type, with any registered secret redacted."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    line = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return redact_secrets(line)[:300]


class OverviewPoller:
    """Calls ``transport.stats()`` (and scrapes the workers) once per ``refresh`` seconds."""

    def __init__(
        self,
        transport: Transport,
        metrics_urls: Sequence[str] = (),
        refresh: float = 5.0,
        *,
        history_seconds: float = HISTORY_SECONDS,
    ) -> None:
        self.transport = transport
        self.metrics_urls = tuple(metrics_urls)
        self.refresh = refresh
        self.history: deque[tuple[float, int, float | None]] = deque(
            maxlen=max(2, math.ceil(history_seconds / refresh) + 1)
        )
        self.stats: QueueStats | None = None
        self.error: str | None = None
        self.bot: str | None = None
        self.worker_rows: list[dict[str, object]] = []
        self.updated_at: float | None = None
        self.polls = 0
        self.ready = asyncio.Event()
        self._polled = asyncio.Condition()
        self._last: tuple[float, QueueStats | None, dict[str, float] | None] | None = None
        self._snapshot: dict[str, Any] = self._build()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        """Start polling in the background (the first poll at once)."""
        if self.metrics_urls:
            self._session = aiohttp.ClientSession()
        self._task = asyncio.create_task(self._run(), name="botqueue-dashboard-poller")

    async def stop(self) -> None:
        """Stop polling and close the scraping session."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    async def wait_ready(self, seconds: float) -> None:
        """Wait (at most ``seconds``) for the first poll to finish, well or not."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), seconds)

    async def wait_polls(self, count: int) -> None:
        """Wait until ``count`` polls have finished (for tests and the benchmark)."""
        async with self._polled:
            await self._polled.wait_for(lambda: self.polls >= count)

    def snapshot(self) -> dict[str, Any]:
        """The latest overview as JSON-ready data (built once per poll, shared by all)."""
        return self._snapshot

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            try:
                await self.poll_once()
            except Exception as error:
                # A defect here must not end the polling for the dashboard's lifetime.
                log.error("dashboard poll failed", error=describe(error))
                self.error = describe(error)
                self._snapshot = self._build()
                self.ready.set()
            # On a fixed schedule: a slow poll skips ticks rather than adding calls.
            now = loop.time()
            next_at += self.refresh * max(1, math.ceil((now - next_at) / self.refresh))
            await asyncio.sleep(max(0.0, next_at - now))

    async def poll_once(self) -> None:
        """Read the queue and the workers once and rebuild the snapshot."""
        at = time.time()
        stats: QueueStats | None = None
        try:
            async with asyncio.timeout(STATS_TIMEOUT_SECONDS):
                stats = await self.transport.stats()
            self.error = None
        except TimeoutError:  # str() of a bare TimeoutError is empty: say what happened
            self.error = f"the queue did not answer within {STATS_TIMEOUT_SECONDS:g} s"
        except Exception as error:  # shown in the banner; the next interval tries again
            self.error = describe(error)
        figures: dict[str, float] | None = None
        if self._session is not None:
            reading = await workers.read(self._session, self.metrics_urls)
            figures = reading.figures if reading.answered else None
            self.bot = workers.bot_state(reading)
        if stats is not None:
            self.stats = stats
        self._record(at, stats, figures)
        self.updated_at = at
        self.polls += 1
        self._snapshot = self._build()
        self.ready.set()
        async with self._polled:
            self._polled.notify_all()

    def _record(
        self, at: float, stats: QueueStats | None, figures: dict[str, float] | None
    ) -> None:
        rate: float | None = None
        if self._last is not None:
            before_at, before_stats, before_figures = self._last
            elapsed = at - before_at
            if self.metrics_urls:
                self.worker_rows = workers.figures_table(figures or {}, before_figures, elapsed)
                rate = _counter_rate(figures, before_figures, elapsed)
            elif stats is not None and before_stats is not None and elapsed > 0:
                fall = _depth(before_stats) - _depth(stats)
                rate = round(max(0, fall) / elapsed, 3)
        elif figures is not None:
            self.worker_rows = workers.figures_table(figures, None, 0.0)
        self._last = (at, stats, figures)
        if stats is not None:
            self.history.append((round(at, 3), stats.visible, rate))

    def _build(self) -> dict[str, Any]:
        return {
            "stats": self.stats.as_dict() if self.stats is not None else None,
            "alarms": alarms_of(self.stats),
            "history": [list(point) for point in self.history],
            "bot": self.bot,
            "error": self.error,
            "updated_at": self.updated_at,
            "refresh": self.refresh,
            "ops_source": "workers" if self.metrics_urls else "queue depth",
            "workers": self.worker_rows,
        }


def _depth(stats: QueueStats) -> int:
    return stats.visible + stats.in_flight


def _counter_rate(
    now: dict[str, float] | None, before: dict[str, float] | None, elapsed: float
) -> float | None:
    if not now or not before or elapsed <= 0:
        return None
    if workers.OPERATIONS not in now or workers.OPERATIONS not in before:
        return None
    change = now[workers.OPERATIONS] - before[workers.OPERATIONS]
    # A fall means a worker restarted or did not answer this time: no rate, not a negative.
    return round(change / elapsed, 3) if change >= 0 else None
