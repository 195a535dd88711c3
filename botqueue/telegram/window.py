"""One rate window: at most N calls in any period, as the Bot API server sees them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator

# Clock granularity only: the slots below make network jitter harmless on their own.
_WINDOW_MARGIN = 0.002


class SlidingWindow:
    """At most ``rate`` calls in any ``period`` seconds *as the server sees them*.

    A slot is busy from the moment a call is sent until it completes, and only then starts its
    one-period cool-down. The server checked the call somewhere between the two, so the next
    call on that slot reaches the server at least one period after the previous one, however
    the network or either event loop delays individual calls. Stamping slots at send time
    instead lets jitter squeeze N+1 calls into the server's window, and each 429 then pauses
    every handler.

    Grants are also spaced ``period / limit`` apart on a grid. Without it the slots freed by a
    burst are re-granted as a burst: the calls queue at the server, each slot holds its call's
    queueing delay on top of the period, and the next cycle is clocked by those late
    completions, so the window never drains (measured: 96-98% of the rate instead of 99%).
    """

    def __init__(self, rate: float, period: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        # Fractional rates (0.5/s) become whole calls over a longer window (1 per 2 s).
        self.limit = max(1, int(rate)) if rate >= 1 else 1
        self.period = period * (self.limit / rate) + _WINDOW_MARGIN
        self._done: deque[float] = deque()
        self._busy = 0
        self._lock = asyncio.Lock()
        self._released = asyncio.Event()
        self._spacing = self.period / self.limit
        self._next_grant = 0.0

    async def acquire(self) -> None:
        """Wait for a free slot and take it; pair with release() when the call completes."""
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._done and self._done[0] <= now - self.period:
                    self._done.popleft()
                if self._busy + len(self._done) < self.limit:
                    if now < self._next_grant:
                        await asyncio.sleep(self._next_grant - now)
                        continue
                    self._busy += 1
                    # On the grid, so one late wake-up does not push back every later grant;
                    # after an idle spell the grid restarts from now instead of bursting.
                    behind = now - self._next_grant >= self._spacing
                    self._next_grant = (now if behind else self._next_grant) + self._spacing
                    return
                if self._done:
                    await asyncio.sleep(self._done[0] + self.period - now)
                else:
                    self._released.clear()
                    await self._released.wait()

    def release(self) -> None:
        """The call completed: its slot cools down for one period from now."""
        self._busy -= 1
        self._done.append(time.monotonic())
        self._released.set()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a slot for the duration of a call."""
        await self.acquire()
        try:
            yield
        finally:
            self.release()

    @property
    def idle(self) -> bool:
        """No call running or cooling down (safe to forget)."""
        return self._busy == 0 and (
            not self._done or self._done[-1] <= time.monotonic() - self.period
        )
