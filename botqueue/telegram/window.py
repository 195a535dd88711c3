"""One rate window: at most N calls in any period, as the Bot API server sees them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator

# Clock granularity of the server: the slots below make network jitter harmless on their own.
_WINDOW_MARGIN = 0.002
# Our own clock's: a round trip measured one tick too long would be credited too much.
_CLOCK_TICK = time.get_clock_info("monotonic").resolution
_HORIZON = 60.0  # how long the fastest round trip is remembered
_BUCKET = 5.0  # round trips are kept as one minimum per this many seconds
_MAX_CREDIT = 0.1  # of the period: the most a wrong estimate can ever overlap two calls


class Slot:
    """A granted slot; call ``sent()`` right before its call goes out, after any other wait."""

    __slots__ = ("sent_at",)

    def __init__(self) -> None:
        self.sent_at: float | None = None

    def sent(self) -> None:
        """Stamp the moment the call goes out (a slot never stamped is never credited)."""
        self.sent_at = time.monotonic()


def mark_sent(*slots: Slot) -> None:
    """Stamp the slots one call holds in several windows with one send time."""
    now = time.monotonic()
    for slot in slots:
        slot.sent_at = now


class RoundTrips:
    """The fastest round trip of the last minute, kept as one minimum per few seconds."""

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [first sample's time, fastest, count]

    def add(self, seconds: float, now: float) -> None:
        """Count the round trip of one answered call."""
        self._expire(now)
        if self._buckets and now - self._buckets[-1][0] < _BUCKET:
            last = self._buckets[-1]
            last[1] = min(last[1], seconds)
            last[2] += 1
        else:
            self._buckets.append([now, seconds, 1])

    def fastest(self, now: float, span: float, samples: int) -> float | None:
        """The fastest round trip, or None until ``samples`` of them cover ``span`` seconds."""
        self._expire(now)
        if not self._buckets or now - self._buckets[0][0] < span:
            return None
        if sum(bucket[2] for bucket in self._buckets) < samples:
            return None
        return min(bucket[1] for bucket in self._buckets)

    def _expire(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - _HORIZON:
            self._buckets.popleft()


class SlidingWindow:
    """At most ``rate`` calls in any ``period`` seconds *as the server sees them*.

    **Slots.** A slot is busy from the moment its call is granted until it completes; then it
    cools down for one period, and only then is it granted again. Stamping slots at send time
    instead lets jitter squeeze N+1 calls into the server's window, and each 429 then pauses
    every handler. The server checked the call at some t between its send s and completion c;
    cooling down from c (the credit k below is 0) makes the next call on the slot reach the
    server a period after t however the network or either event loop delays calls, but holds
    each slot for a whole round trip on top of its period.

    **Credit.** Write t = c - a, where a is the answer leg (the server's work after its check,
    the way back, our event loop), and let the slot's next call, granted at g, be checked at
    g + q', where q' is its request leg (our loop, the way out, the server's work before its
    check). Cooling down from c - k gives the server a gap of at least P - k + a + q', so the
    window still holds while k <= a + q'. The credit is ``credit_fraction`` (0.85) of the
    fastest round trip answered in the last minute, less one clock tick, at most a tenth of
    the period. It is safe if every call pays a floor on each leg (distance and routing: q >=
    Q, a >= A) and that fastest round trip R was at most 15% jitter, queueing or processing
    above its least (R <= (Q + A) / 0.85), for then k <= 0.85 R <= Q + A <= a + q'. TCP's
    BBR likewise takes the least round trip of the last 10 s for a path's propagation delay;
    the 15% is a margin on top. In particular:

    - asymmetric legs: only the sum Q + A matters, all of a round trip on the way out or all
      on the way back alike; jitter only lengthens legs, and a minimum ignores slow calls;
    - processing time before the server's check is request leg, after it answer leg: both
      are in the round trip and in the legs; methods slower than the fastest one are ignored;
    - a slow first call (TCP and TLS handshakes, a cold server) has a long round trip but an
      ordinary answer leg: nothing is credited until the last minute holds max(16, 2 x limit)
      answers spread over two periods or more. The window lets at most ``limit`` calls be in
      flight, so at most that many can have opened a connection at once; the rest ran on
      warm connections, and the minimum is theirs;
    - only a call that completed (no exception) after ``Slot.sent()`` is measured and
      credited: a timed-out or cancelled call may reach the server later still, and a slot
      nobody stamped is held as before. Since the call's own round trip counts before the
      credit is taken, k < its round trip: no cool-down starts before its call was sent;
    - clocks: a tick of ours is taken off the round trip; the server's granularity is the
      2 ms added to the period.

    When the assumptions fail (the server checks some calls early and others late within the
    same round trip; a path that suddenly becomes much shorter), two calls of a slot may
    overlap by at most the credit, at most a tenth of a period, so a strict server can see
    N+1 calls in a window: it answers 429 and the limiter pauses every call of the bot for
    ``retry_after``, which is the safety net. A faster round trip lowers the credit at once;
    a slower path raises it only as the last minute's samples expire.

    **Spacing.** Grants are also spaced ``period / limit`` apart on a grid. Without it the slots
    freed by a burst are re-granted as a burst: the calls queue at the server, each slot holds
    its call's queueing delay on top of the period, and the next cycle is clocked by those
    late completions, so the window never drains (measured: 96-98% of the rate instead of 99%).
    """

    credit_fraction: float = 0.85
    """Share of the fastest recent round trip credited to a slot; 0 cools down from completion."""

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
        self._round_trips = RoundTrips()
        self._samples_needed = max(16, 2 * self.limit)

    async def acquire(self) -> Slot:
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
                    return Slot()
                if self._done:
                    await asyncio.sleep(self._done[0] + self.period - now)
                else:
                    self._released.clear()
                    await self._released.wait()

    def release(self, slot: Slot | None = None, *, answered: bool = True) -> None:
        """The call completed (``answered``: without an exception); its slot cools down for one
        period from the latest moment the server can have seen the call."""
        now = time.monotonic()
        self._busy -= 1
        start = now
        if answered and slot is not None and slot.sent_at is not None:
            self._round_trips.add(now - slot.sent_at, now)
            start = now - self.credit(now)
        # Kept in order, so the oldest cool-down is first; starting later is always safe.
        if self._done and start < self._done[-1]:
            start = self._done[-1]
        self._done.append(start)
        self._released.set()

    def credit(self, now: float | None = None) -> float:
        """Seconds by which an answered call's cool-down starts before its completion."""
        now = time.monotonic() if now is None else now
        fastest = self._round_trips.fastest(now, 2 * self.period, self._samples_needed)
        if fastest is None:
            return 0.0
        credit = self.credit_fraction * max(0.0, fastest - _CLOCK_TICK)
        return min(credit, _MAX_CREDIT * self.period)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Hold a slot for the duration of a call; ``sent()`` on it lets its legs be credited."""
        granted = await self.acquire()
        answered = False
        try:
            yield granted
            answered = True
        finally:
            self.release(granted, answered=answered)

    @property
    def idle(self) -> bool:
        """No call running or cooling down (safe to forget)."""
        return self._busy == 0 and (
            not self._done or self._done[-1] <= time.monotonic() - self.period
        )
