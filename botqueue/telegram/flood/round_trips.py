"""A worker's fastest recent round trip: what it publishes for the credit (see ``rule``)."""

from __future__ import annotations

from collections import deque

_HORIZON = 60.0  # how long the fastest round trip is remembered
_BUCKET = 5.0  # round trips are kept as one minimum per this many seconds


class RoundTrips:
    """The fastest round trip of the last minute, kept as one minimum per few seconds."""

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [first sample's time, fastest, count]

    def add(self, seconds: float, now: float) -> None:
        """Count the round trip of one answered call."""
        self._expire(now)
        if self._buckets and 0 <= now - self._buckets[-1][0] < _BUCKET:
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
