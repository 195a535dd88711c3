"""Where a token's window state lives: one primitive, ``transact``, and the in-memory store.

A store knows nothing of the grant rule (``rule``): it reads the state, applies a function to
it at the store's now and writes it back, atomically with respect to every other process that
shares it. That is all SQLite (``BEGIN IMMEDIATE``), Redis (a compare-and-set script) and
memory (the event loop: no await inside the swap) are asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol, TypeVar

from .clock import MONOTONIC, Clock
from .rule import State

T = TypeVar("T")

Work = Callable[[State, float], T]
"""A function of the state and the store's now; it may change the state in place."""


class BudgetUnavailable(Exception):
    """The shared store could not be reached or refused the request."""


class Store(Protocol):
    """One token's window state, behind one atomic read-modify-write."""

    name: str
    """Where the store is, for logs (never a password)."""
    shared: bool
    """Reached by other processes (leases and heartbeats matter)."""
    lease: float
    """Seconds a grant or a worker is held without renewal (infinite in memory)."""

    async def transact(self, work: Work[T]) -> T:
        """Apply ``work`` to the state at the store's now, atomically; return its result.

        Raises:
            BudgetUnavailable: the store could not be reached.
        """

    async def aclose(self) -> None:
        """Close connections."""


class MemoryStore:
    """The state in this process: the store of one worker's budget and of per-chat windows."""

    name = "memory"
    shared = False
    # Nobody else can release a slot of this process, and its calls always end in release().
    lease = math.inf

    def __init__(self, clock: Clock = MONOTONIC) -> None:
        self.clock = clock
        self.state = State()

    async def transact(self, work: Work[T]) -> T:
        """Apply ``work`` at once: nothing else runs on the loop meanwhile."""
        return work(self.state, self.clock.now())

    def apply(self, work: Work[T]) -> T:
        """``transact`` without awaiting (the store never waits)."""
        return work(self.state, self.clock.now())

    async def aclose(self) -> None:
        """Nothing to close."""
