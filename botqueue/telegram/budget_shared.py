"""SharedBudget: one token's budget in a store every worker reaches, with a local fallback.

Each process serializes its own acquirers (one request to the store at a time) and keeps a
heartbeat task that renews the leases of its slots, counts the workers sharing the budget and
mirrors the shared pause, so that ``paused_until()`` reflects a 429 another worker saw even
while this one makes no call. A worker that dies holds its slots for at most one lease.

When the store cannot be reached, the worker goes on with a local window at a share of the
rate (``fallback_share``, or 1 / the workers last seen), says so in one log line, and rejoins
at the first heartbeat that reaches the store again (one more line), handing the store the
cool-downs of the calls it made meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid
from collections import deque

import structlog

from .budget import Beat, BudgetStore, BudgetUnavailable, Grant, LocalBudget
from .window import SlidingWindow

log = structlog.get_logger("botqueue.telegram.budget")

UNKNOWN_WORKERS_SHARE = 0.25
"""Fallback share before the store was ever reached (how many workers share it is unknown)."""
HEARTBEAT_SECONDS = 1.0
"""Longest time between heartbeats (shorter when a third of the lease is shorter)."""


class SharedBudget:
    """A FloodBudget kept in a BudgetStore, shared by every worker of the token."""

    def __init__(
        self,
        store: BudgetStore,
        rate: float,
        *,
        lease: float = 10.0,
        fallback_share: float | None = None,
    ) -> None:
        # The local window's own arithmetic, so both budgets mean the same by a rate.
        window = SlidingWindow(rate)
        self.store = store
        self.rate = rate
        self.limit, self.period = window.limit, window.period
        self.lease = lease
        self.fallback_share = fallback_share
        self.owner = uuid.uuid4().hex[:16]
        self.workers = 0
        self._spacing = self.period / self.limit
        self._ids = itertools.count()
        self._held: set[str] = set()
        self._paused_until = 0.0
        self._fallback: LocalBudget | None = None
        self._fallback_done: deque[float] = deque()
        self._lock: asyncio.Lock | None = None
        self._released: asyncio.Event | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def shared(self) -> bool | None:
        """True while the store is reached, False while on the local fallback."""
        return self._fallback is None

    def paused_until(self) -> float:
        """The token's pause deadline as last seen in the store (time.monotonic())."""
        return self._paused_until

    def _mirror(self, paused: float) -> None:
        if paused > 0:
            self._paused_until = max(self._paused_until, time.monotonic() + paused)

    def _start(self) -> tuple[asyncio.Lock, asyncio.Event]:
        if self._lock is None or self._released is None:
            self._lock, self._released = asyncio.Lock(), asyncio.Event()
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(), name="botqueue-flood-heartbeat")
        return self._lock, self._released

    async def acquire(self) -> Grant | None:
        """Wait for a slot of the shared window; None while the token is paused."""
        lock, released = self._start()
        async with lock:
            while True:
                if self._fallback is not None:
                    grant = await self._fallback.acquire()
                    if grant is not None:
                        # Unique, so that its cool-down can be handed to the store later.
                        grant.slot = f"{self.owner}:{next(self._ids)}"
                    return grant
                slot = f"{self.owner}:{next(self._ids)}"
                try:
                    answer = await self.store.grant(slot, self.limit, self.period, self.lease)
                except BudgetUnavailable as error:
                    self._lose(error)
                    continue
                if answer.paused > 0:
                    self._mirror(answer.paused)
                    return None
                if answer.granted:
                    self._held.add(slot)
                    return Grant(slot, time.monotonic(), shared=True)
                # Another worker's release cannot wake us; this process's releases can.
                released.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), max(0.001, answer.wait))

    async def release(
        self, grant: Grant, sent_at: float, completed_at: float, *, answered: bool = True
    ) -> None:
        """Start the slot's cool-down: in the store, or locally while it is unreachable.

        The store's cool-down starts at the completion, uncredited: the window's credit
        assumes the slot's next call takes this one's path, which another host's may not.
        """
        grant.release_locally(sent_at, answered)
        self._held.discard(grant.slot)
        if self._released is not None:
            self._released.set()
        if self._fallback is not None:
            # Handed to the store when it is back (a shared slot's lease runs out by itself).
            self._fallback_done.append(completed_at)
            return
        try:
            # A fallback grant still running at the rejoin is recorded here the same way.
            await self.store.release(grant.slot, time.monotonic() - completed_at, self.period)
        except BudgetUnavailable as error:
            self._lose(error)
            self._fallback_done.append(completed_at)

    def pause(self, seconds: float) -> None:
        """Pause every worker of the token: here at once, in the store in the background."""
        self._mirror(seconds)
        if self._fallback is not None:
            self._fallback.pause(seconds)
            return
        task = asyncio.get_running_loop().create_task(self._share_pause(seconds))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _share_pause(self, seconds: float) -> None:
        try:
            self._mirror(await self.store.pause(seconds))
        except BudgetUnavailable as error:
            self._lose(error)

    def _lose(self, error: BudgetUnavailable) -> None:
        if self._fallback is not None:
            return
        share = self.fallback_share or (1 / self.workers if self.workers else UNKNOWN_WORKERS_SHARE)
        self._fallback = LocalBudget(self.rate * share)
        self._fallback.pause(max(0.0, self._paused_until - time.monotonic()))
        log.warning(
            "flood budget unreachable: this worker goes on alone at a share of the rate",
            store=self.store.name,
            rate=round(self.rate * share, 3),
            share=round(share, 3),
            error=str(error),
        )

    def _rejoin(self, beat: Beat) -> None:
        self._fallback = None
        log.info("flood budget reachable again: shared again", store=self.store.name)

    def _recent_fallback_calls(self) -> list[float]:
        now = time.monotonic()
        while self._fallback_done and self._fallback_done[0] <= now - self.period:
            self._fallback_done.popleft()
        return [now - done for done in self._fallback_done]

    async def _beat(self) -> None:
        interval = min(HEARTBEAT_SECONDS, self.lease / 3)
        try:
            while True:
                adopt = self._recent_fallback_calls() if self._fallback is not None else []
                try:
                    beat = await self.store.heartbeat(
                        self.owner, list(self._held), self.lease, adopt
                    )
                except BudgetUnavailable as error:
                    self._lose(error)
                except Exception as error:  # the heartbeat must outlive any one failure
                    self._lose(BudgetUnavailable(f"{type(error).__name__}: {error}"))
                else:
                    if self._fallback is not None:
                        self._rejoin(beat)
                    self._fallback_done.clear()
                    self.workers = beat.workers
                    self._mirror(beat.paused)
                await asyncio.sleep(interval)
        finally:
            await self._leave()

    async def _leave(self) -> None:
        with contextlib.suppress(BudgetUnavailable):
            if self._fallback is None:
                await self.store.leave(self.owner, list(self._held))
        await self.store.aclose()

    async def aclose(self) -> None:
        """Stop the heartbeat, drop this worker's lease and close the store."""
        task, self._heartbeat = self._heartbeat, None
        if task is None:
            await self.store.aclose()
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
