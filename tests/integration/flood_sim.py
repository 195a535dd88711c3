"""A discrete-event run of workers against a strict one-second server window, in virtual time.

Each worker draws slots from one store through the rule as ``Budget`` does (one acquirer at a
time, retrying after the answer's wait or at its own next release), sends at once, and its call
is checked by the server after its request leg and answered after its answer leg, each leg
drawn with jitter. The store's clock and the workers' are one ``FakeClock``: no real sleep.
A share of the calls may declare a server hold (``hold``): of those, ``held_share`` of all
calls are held that long by the server after its check, ``instant_share`` are answered at once
(a user who left meanwhile), and every one is released with its hold declared.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any

from botqueue.telegram.flood import FakeClock, Rate, RoundTrips, Store, rule


@dataclass
class Result:
    """What the server saw in the measured span."""

    admitted: int = 0
    refused: int = 0
    checks: list[float] = field(default_factory=list)

    def share(self, rate: Rate, seconds: float) -> float:
        """Admitted calls as a share of the most the window allows over ``seconds``."""
        return self.admitted / (rate.limit / rate.period * seconds)


@dataclass
class _Worker:
    owner: str
    trips: RoundTrips = field(default_factory=RoundTrips)
    in_flight: int = 0
    generation: int = 0  # only the latest scheduled attempt of a worker runs
    ids: itertools.count[int] = field(default_factory=itertools.count)


class _Run:
    """One simulated run: the event heap and what each kind of event does."""

    def __init__(self, store: Store, clock: FakeClock, window: Rate, **options: Any) -> None:
        self.store, self.clock, self.window = store, clock, window
        self.options, self.rng, self.lease = options, random.Random(options["seed"]), 10.0
        self.events: list[tuple[float, int, str, _Worker, Any]] = []
        self.order = itertools.count()
        self.checks: list[float] = []
        self.result = Result(checks=self.checks)

    def at(self, when: float, kind: str, worker: _Worker, data: Any = None) -> None:
        heapq.heappush(self.events, (when, next(self.order), kind, worker, data))

    def attempt(self, when: float, worker: _Worker) -> None:
        worker.generation += 1  # only the latest scheduled attempt of a worker runs
        self.at(when, "try", worker, worker.generation)

    def leg(self, share: float) -> float:
        jitter: float = self.options["jitter"]
        round_trip: float = self.options["round_trip"]
        return round_trip * share * self.rng.uniform(1 - jitter, 1 + jitter)

    async def on_try(self, now: float, worker: _Worker, generation: int) -> None:
        if generation != worker.generation or worker.in_flight >= self.options["concurrency"]:
            return  # superseded, or woken again by its next completion
        slot = f"{worker.owner}:{next(worker.ids)}"
        grant = functools.partial(rule.grant, rate=self.window, slot=slot, lease=self.lease)
        answer = await self.store.transact(grant)
        if not answer.granted:
            self.attempt(now + max(0.001, answer.wait), worker)
            return
        worker.in_flight += 1
        share = self.options["request_share"]
        q, a = self.leg(share), self.leg(1 - share)
        declared = False
        held, instant = self.options["held_share"], self.options["instant_share"]
        if held or instant:  # no draw otherwise: the other runs keep their random stream
            draw = self.rng.random()
            declared = draw < held + instant
            a += self.options["hold"] if draw < held else 0.0
        self.at(now + q, "check", worker)
        self.at(now + q + a, "done", worker, (slot, now, declared))
        self.attempt(now, worker)

    def on_check(self, now: float, measured: bool) -> None:
        # The strict window: at most limit checks in any one second.
        admitted = len(self.checks) - bisect_right(self.checks, now - 1.0) < self.window.limit
        if admitted:
            self.checks.append(now)
        if measured:
            self.result.admitted += admitted
            self.result.refused += not admitted

    async def on_done(
        self, now: float, worker: _Worker, slot: str, sent: float, declared: bool
    ) -> None:
        worker.in_flight -= 1
        worker.trips.add(now - sent, now)
        span, samples = 2 * self.window.period, max(16, 2 * self.window.limit)
        release = functools.partial(
            rule.release, rate=self.window, slot=slot, ago=0.0, lease=self.lease,
            fastest=worker.trips.fastest(now, span, samples), took=now - sent,
            server_hold=self.options["hold"] if declared else 0.0,
        )  # fmt: skip
        await self.store.transact(release)
        self.attempt(now, worker)  # a release wakes this worker's acquirer


async def run(
    store: Store,
    clock: FakeClock,
    *,
    rate: float,
    workers: int,
    round_trip: float,
    request_share: float = 0.5,
    jitter: float = 0.2,
    seconds: float = 12.0,
    warmup: float = 8.0,
    concurrency: int = 10,
    seed: int = 1,
    hold: float = 0.0,
    held_share: float = 0.0,
    instant_share: float = 0.0,
) -> Result:
    """Run ``workers`` at full demand for ``warmup + seconds``; count the measured span."""
    sim = _Run(
        store, clock, Rate.of(rate), round_trip=round_trip, request_share=request_share,
        jitter=jitter, concurrency=concurrency, seed=seed, hold=hold, held_share=held_share,
        instant_share=instant_share,
    )  # fmt: skip
    start = clock.now()
    for worker in (_Worker(f"w{n}") for n in range(workers)):
        sim.attempt(start, worker)
    while sim.events:
        now, _, kind, worker, data = heapq.heappop(sim.events)
        if now > start + warmup + seconds:
            break
        clock.set(now)
        if kind == "try":
            await sim.on_try(now, worker, data)
        elif kind == "check":
            sim.on_check(now, now >= start + warmup)
        else:
            await sim.on_done(now, worker, *data)
    return sim.result
