"""Clocks for flood control: the window's and the stores' sense of now, injectable for tests."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds on some fixed origin, and a sleep on the same scale."""

    def now(self) -> float:
        """The current time, in seconds."""

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""


class MonotonicClock:
    """``time.monotonic()``: one process's clock, never set back (the in-memory store's)."""

    def now(self) -> float:
        """time.monotonic()."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep()."""
        await asyncio.sleep(max(0.0, seconds))


class WallClock(MonotonicClock):
    """``time.time()``: the clock every process of a host shares (the SQLite file's)."""

    def now(self) -> float:
        """time.time()."""
        return time.time()


class FakeClock:
    """A clock that moves only when told to, or when a sleep needs it to (no real waiting).

    ``sleep`` advances the time to its deadline at once and yields to the loop, so code that
    waits on the clock runs in virtual time; ``set`` may move it back, as an NTP step does.
    """

    def __init__(self, start: float = 1_000.0) -> None:
        self.time = start

    def now(self) -> float:
        """The fake time."""
        return self.time

    def advance(self, seconds: float) -> None:
        """Move the time on by ``seconds``."""
        self.time += seconds

    def set(self, when: float) -> None:
        """Set the time, forwards or back."""
        self.time = when

    async def sleep(self, seconds: float) -> None:
        """Advance the time by ``seconds`` and let other tasks run."""
        self.time += max(0.0, seconds)
        await asyncio.sleep(0)


MONOTONIC = MonotonicClock()
"""The default clock of in-process windows."""
WALL = WallClock()
"""The default clock of the SQLite store (shared by the host's processes)."""
