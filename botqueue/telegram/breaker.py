"""The circuit breaker for Telegram outages: when the Bot API stops answering, the bot pauses.

An outage (every call answering 5xx, timing out, or refused) is not the failure of the
operations that meet it: retrying each on its own schedule spends their retries in minutes
and dead-letters them all. So a server-side or network failure is first *suspected* to be
the bot's: the breaker probes with getMe at once. Telegram answering proves the failure was
the operation's own, which then takes its normal retry. Failures of ``failures`` distinct
operations (each probe counts as one) within ``window`` seconds *open* the breaker: the bot
is paused, getMe probes back off from ``probe_min`` to ``probe_max`` seconds, and the first
answer closes it. Per-operation answers (4xx) never reach the breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from .errors import TelegramRetryableError

log = structlog.get_logger("botqueue.telegram")

OUTAGE_REASONS = frozenset({"server_or_network", "timeout"})
"""Reason codes of failures that may mean Telegram itself is down (5xx, timeouts, refused or
reset connections)."""


def is_outage_failure(error: BaseException) -> bool:
    """Whether an error is a server-side or network failure (never a 4xx answer)."""
    return isinstance(error, TelegramRetryableError) and error.reason in OUTAGE_REASONS


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """When the breaker opens, and how it probes while open."""

    failures: int = 3
    """Distinct operations (a probe counts as one) failing server-side within ``window``."""
    window: float = 10.0
    """Seconds over which failures are counted."""
    probe_min: float = 1.0
    """First wait between probes while open; doubled after each failed probe."""
    probe_max: float = 5.0
    """Longest wait between probes: the bot resumes at most this long after Telegram does
    (a getMe every 5 s is nothing against Telegram's limits)."""


class CircuitBreaker:
    """Tells an outage from one operation's failure, and pauses the bot through an outage."""

    def __init__(
        self, probe: Callable[[], Awaitable[object]], settings: BreakerSettings | None = None
    ) -> None:
        self.settings = settings or BreakerSettings()
        self._probe = probe
        self._failures: deque[tuple[float, object]] = deque()
        self._open = False
        self._opened_at = 0.0
        self._next_probe_at = 0.0
        self._closed = asyncio.Event()
        self._closed.set()
        self._changed = asyncio.Event()
        self._successes = 0
        self._probe_task: asyncio.Task[None] | None = None
        self._probe_keys = itertools.count()
        self.openings = 0
        """How often the breaker has opened."""
        self._unavailable_seconds = 0.0

    @property
    def is_open(self) -> bool:
        """True while Telegram is taken to be down."""
        return self._open

    @property
    def unavailable_seconds(self) -> float:
        """Seconds spent open, the current opening included."""
        current = time.monotonic() - self._opened_at if self._open else 0.0
        return self._unavailable_seconds + current

    def until_next_probe(self) -> float:
        """Seconds until the next probe while open (0 when closed)."""
        return max(0.0, self._next_probe_at - time.monotonic()) if self._open else 0.0

    async def wait_closed(self) -> None:
        """Return once the breaker is closed."""
        await self._closed.wait()

    def record_success(self) -> None:
        """Telegram answered a call: it is up, and recent failures were not an outage."""
        self._successes += 1
        if not self._failures and not self._open:
            return  # the common case, once per answered call: nobody is waiting on it
        self._failures.clear()
        if self._open:
            self._close()
        self._notify()

    async def absorbs(self, key: object) -> bool:
        """Count the server-side failure of operation ``key``; True when it is part of an
        outage (the breaker is or becomes open), False when Telegram answers meanwhile or
        ``window`` passes without an outage (the failure is then the operation's own)."""
        if self._open:
            return True
        self._record(key)
        if self._open:
            return True
        successes = self._successes
        self._start_probing()
        deadline = time.monotonic() + self.settings.window
        while not self._open and self._successes == successes:
            changed = self._changed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)
        return self._open

    def _record(self, key: object) -> None:
        now = time.monotonic()
        self._failures.append((now, key))
        while self._failures and self._failures[0][0] < now - self.settings.window:
            self._failures.popleft()
        if len({k for _, k in self._failures}) >= self.settings.failures:
            self._open_now()

    def _open_now(self) -> None:
        self._open = True
        self.openings += 1
        self._opened_at = time.monotonic()
        self._closed.clear()
        log.warning(
            "Telegram unavailable: the bot is paused until getMe answers",
            failures=len(self._failures),
            windowSeconds=self.settings.window,
        )
        self._notify()
        self._start_probing()

    def _close(self) -> None:
        self._open = False
        spent = time.monotonic() - self._opened_at
        self._unavailable_seconds += spent
        self._closed.set()
        log.info("Telegram available again: the bot resumes", unavailableSeconds=round(spent, 1))

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _start_probing(self) -> None:
        if self._probe_task is None or self._probe_task.done():
            self._probe_task = asyncio.create_task(self._probe_loop(), name="botqueue-probe")

    async def _probe_loop(self) -> None:
        delay = self.settings.probe_min
        while self._open or self._failures:
            if self._open:
                self._next_probe_at = time.monotonic() + delay
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.probe_max)
            try:
                await self._probe()
            except Exception as error:
                if not is_outage_failure(error):
                    # Telegram answered (a 429, a 401): it is up; what the answer means is
                    # for the operations to find out.
                    self.record_success()
                    return
                if not self._open:
                    self._record(("probe", next(self._probe_keys)))
                    if not self._open:
                        await asyncio.sleep(self.settings.probe_min)
                continue
            self.record_success()
            return

    async def aclose(self) -> None:
        """Stop probing."""
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
