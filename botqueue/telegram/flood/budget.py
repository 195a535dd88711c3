"""Budget: a rate window over any store, with the token's pause; shared ones fall back locally.

The same class is one worker's overall budget and each per-chat window (a ``MemoryStore``),
and every worker's share of a token's budget in an SQLite file or Redis. A shared budget keeps
a heartbeat task that renews its leases, publishes its fastest round trip, counts the workers
and mirrors the shared pause, so that ``paused_until()`` reflects a 429 another worker saw
even while this one makes no call. A worker that dies holds its slots for at most one lease.

When a shared store cannot be reached, the worker goes on with a local budget at a share of
the rate (``fallback_share``, or 1 / the workers last seen), says so in one log line, and
rejoins at the first heartbeat that reaches the store again (one more line), handing the store
the cool-downs of the calls it made meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from . import rule
from .clock import MONOTONIC, Clock
from .round_trips import RoundTrips
from .rule import Rate
from .store import BudgetUnavailable, MemoryStore, Store

log = structlog.get_logger("botqueue.telegram.budget")

UNKNOWN_WORKERS_SHARE = 0.25
"""Fallback share before the store was ever reached (how many workers share it is unknown)."""
HEARTBEAT_SECONDS = 1.0
"""Longest time between heartbeats (shorter when a third of the lease is shorter)."""


@dataclass(eq=False)
class Grant:
    """One slot of a budget, held from acquire() until release()."""

    slot: str
    granted_at: float
    """The budget's clock when the slot was granted."""
    shared: bool = False
    """Granted by a shared store (else by this process's)."""


class Budget:
    """A FloodBudget: ``rate`` calls per second drawn from ``store`` (see ``rule``)."""

    def __init__(
        self,
        store: Store | None,
        rate: float,
        *,
        fallback_share: float | None = None,
        clock: Clock = MONOTONIC,
    ) -> None:
        self.store: Store = store if store is not None else MemoryStore(clock)
        self.rate = rate
        self.window = Rate.of(rate)
        self.limit, self.period = self.window.limit, self.window.period
        self.lease = self.store.lease
        self.fallback_share = fallback_share
        self.clock = clock
        self.owner = uuid.uuid4().hex[:16]
        self.workers = 0
        self.round_trips = RoundTrips()
        self._samples = max(16, 2 * self.limit)
        self._ids = itertools.count()
        self._held: set[str] = set()
        self._paused_until = 0.0
        self._fallback: Budget | None = None
        self._fallback_done: deque[float] = deque()
        self._lock: asyncio.Lock | None = None
        self._released: asyncio.Event | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()

    @property
    def shared(self) -> bool | None:
        """True while shared with other workers, False on the local fallback, None if local."""
        return None if not self.store.shared else self._fallback is None

    def paused_until(self) -> float:
        """The token's pause deadline as last seen (this budget's clock)."""
        return self._paused_until

    def _mirror(self, paused: float) -> None:
        if paused > 0:
            self._paused_until = max(self._paused_until, self.clock.now() + paused)

    def fastest(self) -> float | None:
        """This worker's fastest recent round trip, once enough answers were measured."""
        return self.round_trips.fastest(self.clock.now(), 2 * self.period, self._samples)

    def _start(self) -> tuple[asyncio.Lock, asyncio.Event]:
        if self._lock is None or self._released is None:
            self._lock, self._released = asyncio.Lock(), asyncio.Event()
        if self._heartbeat is None and self.store.shared:
            self._heartbeat = asyncio.create_task(self._beat(), name="botqueue-flood-heartbeat")
        return self._lock, self._released

    async def acquire(self) -> Grant | None:
        """Wait for a slot and take it; None while the token is paused (see paused_until())."""
        lock, released = self._start()
        async with lock:  # first come, first served among this process's callers
            while True:
                if self._fallback is not None:
                    return await self._fallback.acquire()
                slot = f"{self.owner}:{next(self._ids)}"
                work = functools.partial(rule.grant, rate=self.window, slot=slot, lease=self.lease)
                try:
                    answer = await self.store.transact(work)
                except BudgetUnavailable as error:
                    self._lose(error)
                    continue
                if answer.paused > 0:
                    self._mirror(answer.paused)
                    return None
                if answer.granted:
                    self._held.add(slot)
                    return Grant(slot, self.clock.now(), shared=self.store.shared)
                # Another worker's release cannot wake us; this process's releases can.
                released.clear()
                await self._wait(released, max(0.001, answer.wait))

    async def _wait(self, released: asyncio.Event, seconds: float) -> None:
        # On the budget's clock, so that a fake one runs the wait in virtual time.
        waits = [
            asyncio.ensure_future(self.clock.sleep(seconds)),
            asyncio.ensure_future(released.wait()),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()

    @contextlib.asynccontextmanager
    async def slot(self, *, server_hold: float = 0.0) -> AsyncIterator[Grant | None]:
        """Hold a slot for one call sent on entry (None: paused); credited if it raises not
        (``server_hold``: see ``release``)."""
        grant = await self.acquire()
        if grant is None:
            yield None
            return
        sent_at, answered = self.clock.now(), False
        try:
            yield grant
            answered = True
        finally:
            await self.release(
                grant, sent_at, self.clock.now(), answered=answered, server_hold=server_hold
            )

    async def release(
        self,
        grant: Grant,
        sent_at: float | None,
        completed_at: float,
        *,
        answered: bool = True,
        server_hold: float = 0.0,
    ) -> None:
        """The call sent at ``sent_at`` (None: never sent) completed at ``completed_at`` (this
        budget's clock), ``answered`` if without an exception: the slot's cool-down starts.

        ``server_hold``: seconds the server is known to hold this call's answer after its
        check; the cool-down may start that much before the completion (``rule.release``).
        """
        self._held.discard(grant.slot)
        if self._released is not None:
            self._released.set()
        fastest = took = None
        if answered and sent_at is not None:
            took = completed_at - sent_at
            self.round_trips.add(took, completed_at)
            fastest = self.fastest()
        if self._fallback is not None and not grant.shared:
            await self._fallback.release(
                grant, sent_at, completed_at, answered=answered, server_hold=server_hold
            )
            # Handed to the store when it is back (a shared slot's lease runs out by itself).
            self._fallback_done.append(completed_at)
            return
        ago = self.clock.now() - completed_at
        work = functools.partial(
            rule.release, rate=self.window, slot=grant.slot, ago=ago, lease=self.lease,
            fastest=fastest, took=took, server_hold=server_hold,
        )  # fmt: skip
        try:
            await self.store.transact(work)
        except BudgetUnavailable as error:
            self._lose(error)
            self._fallback_done.append(completed_at)

    def pause(self, seconds: float) -> None:
        """Pause every call of the token for ``seconds`` from now (after a 429)."""
        self._mirror(seconds)
        if self._fallback is not None:
            self._fallback.pause(seconds)
            return
        if isinstance(self.store, MemoryStore):
            self.store.apply(functools.partial(rule.pause, seconds=seconds))
            return
        task = asyncio.get_running_loop().create_task(self._share_pause(seconds))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _share_pause(self, seconds: float) -> None:
        try:
            self._mirror(await self.store.transact(functools.partial(rule.pause, seconds=seconds)))
        except BudgetUnavailable as error:
            self._lose(error)

    def _lose(self, error: BudgetUnavailable) -> None:
        if self._fallback is not None:
            return
        share = self.fallback_share or (1 / self.workers if self.workers else UNKNOWN_WORKERS_SHARE)
        self._fallback = Budget(None, self.rate * share, clock=self.clock)
        self._fallback.pause(max(0.0, self._paused_until - self.clock.now()))
        log.warning(
            "flood budget unreachable: this worker goes on alone at a share of the rate",
            store=self.store.name,
            rate=round(self.rate * share, 3),
            share=round(share, 3),
            error=str(error),
        )

    def _recent_fallback_calls(self) -> list[float]:
        now = self.clock.now()
        while self._fallback_done and self._fallback_done[0] <= now - self.period:
            self._fallback_done.popleft()
        return [now - done for done in self._fallback_done]

    async def _beat(self) -> None:
        interval = min(HEARTBEAT_SECONDS, self.lease / 3)
        try:
            while True:
                await self._beat_once()
                await self.clock.sleep(interval)
        finally:
            await self._leave()

    async def _beat_once(self) -> None:
        adopt = self._recent_fallback_calls() if self._fallback is not None else []
        work = functools.partial(
            rule.beat, rate=self.window, owner=self.owner, slots=list(self._held),
            lease=self.lease, adopt=adopt, fastest=self.fastest(),
        )  # fmt: skip
        try:
            beat = await self.store.transact(work)
        except BudgetUnavailable as error:
            self._lose(error)
        except Exception as error:  # the heartbeat must outlive any one failure
            self._lose(BudgetUnavailable(f"{type(error).__name__}: {error}"))
        else:
            if self._fallback is not None:
                self._fallback = None
                log.info("flood budget reachable again: shared again", store=self.store.name)
            self._fallback_done.clear()
            self.workers = beat.workers
            self._mirror(beat.paused)

    async def _leave(self) -> None:
        with contextlib.suppress(BudgetUnavailable):
            if self._fallback is None:
                await self.store.transact(lambda state, now: rule.leave(state, self.owner))
        await self.store.aclose()

    @property
    def idle(self) -> bool:
        """No call running or cooling down here (an in-memory window is safe to forget)."""
        if isinstance(self.store, MemoryStore):
            return rule.idle(self.store.state, self.clock.now(), self.window)
        return not self._held

    async def aclose(self) -> None:
        """Stop the heartbeat, drop this worker's lease and close the store."""
        task, self._heartbeat = self._heartbeat, None
        if task is None:
            await self.store.aclose()
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
