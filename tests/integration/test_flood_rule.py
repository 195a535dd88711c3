"""The grant rule on every store (memory, SQLite, a real Redis), on a fake clock: no real sleep.

One table of cases, each a script of requests at set times; then whole runs of workers against
a strict one-second server window (``flood_sim``), which must see no call too many and nearly
the whole rate, round trips of 1 to 100 ms with jitter on either leg.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botqueue.telegram.flood import FakeClock, MemoryStore, Rate, State, Store, rule
from botqueue.telegram.flood.store_redis import RedisStore
from botqueue.telegram.flood.store_sqlite import SqliteStore
from tests.integration.redis_server import (  # noqa: F401 (fixtures, used by name)
    redis_server_fixture,
    redis_url_fixture,
)

from . import flood_sim

T0, LEASE = 1_000.0, 10.0
ONE = Rate.of(1)  # one call per 1.002 s
THREE = Rate.of(3)


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An empty store of each kind, on the test's fake clock (``store.clock``)."""
    clock = FakeClock(T0)
    made: Store
    if request.param == "memory":
        made = MemoryStore(clock)
    elif request.param == "sqlite":
        made = SqliteStore(str(tmp_path / "f.db"), "token", lease=LEASE, clock=clock)
    else:
        made = RedisStore(request.getfixturevalue("redis_url"), "token", lease=LEASE, clock=clock)
    yield made
    await made.aclose()


class Script:
    """Requests to a store at set times of its fake clock."""

    def __init__(self, store: Store, rate: Rate = ONE) -> None:
        self.store, self.rate = store, rate
        self.clock: FakeClock = store.clock  # type: ignore[attr-defined]

    async def grant(self, at: float, slot: str = "a:0", lease: float = LEASE) -> rule.Answer:
        self.clock.set(T0 + at)
        work = functools.partial(rule.grant, rate=self.rate, slot=slot, lease=lease)
        return await self.store.transact(work)

    async def release(
        self,
        at: float,
        slot: str = "a:0",
        ago: float = 0.0,
        fastest: float | None = None,
        took: float | None = None,
        server_hold: float = 0.0,
    ) -> None:
        self.clock.set(T0 + at)
        work = functools.partial(
            rule.release, rate=self.rate, slot=slot, ago=ago, lease=LEASE, fastest=fastest,
            took=took, server_hold=server_hold,
        )  # fmt: skip
        await self.store.transact(work)

    async def frees_at(self, at: float, slot: str) -> None:
        """The next grant is refused just before ``at`` and granted just after."""
        assert not (await self.grant(at - 0.001, slot)).granted
        assert (await self.grant(at + 0.001, slot)).granted

    async def beat(
        self, at: float, owner: str, slots: list[str] | None = None, fastest: float | None = None
    ) -> rule.Beat:
        self.clock.set(T0 + at)
        work = functools.partial(
            rule.beat, rate=self.rate, owner=owner, slots=slots or [], lease=LEASE, adopt=[],
            fastest=fastest,
        )  # fmt: skip
        return await self.store.transact(work)

    async def pause(self, at: float, seconds: float) -> float:
        self.clock.set(T0 + at)
        return await self.store.transact(functools.partial(rule.pause, seconds=seconds))

    async def state(self) -> State:
        return await self.store.transact(lambda state, now: State.loads(state.dumps()))


async def test_grants_up_to_the_limit_on_the_grid(store: Store) -> None:
    s = Script(store, THREE)
    spacing = THREE.spacing
    assert (await s.grant(0, "a:0")).granted
    refused = await s.grant(0.01, "a:1")  # the grid: one spacing apart
    assert not refused.granted and refused.wait == pytest.approx(spacing - 0.01)
    assert (await s.grant(spacing, "a:1")).granted
    assert (await s.grant(2 * spacing, "a:2")).granted
    full = await s.grant(0.9, "a:3")  # three busy: nothing until a cool-down ends
    assert not full.granted and full.paused == 0
    await s.release(1.0, "a:0")
    assert not (await s.grant(1.5, "a:3")).granted  # cooling down until 2.002
    assert (await s.grant(1.0 + THREE.period + 0.001, "a:3")).granted


async def test_a_cool_down_starts_at_the_completion_less_the_credit(store: Store) -> None:
    s = Script(store)
    assert (await s.grant(0)).granted
    await s.release(0.2, ago=0.1)  # completed 0.1 s before the store heard of it
    assert not (await s.grant(0.1 + ONE.period - 0.001, "a:1")).granted
    assert (await s.grant(0.1 + ONE.period + 0.001, "a:1")).granted
    # Credited: 0.85 of the fastest published round trip (50 ms: 42.5 ms earlier).
    await s.release(2.0, "a:1", fastest=0.05)
    credited = 2.0 + ONE.period - 0.0425
    assert not (await s.grant(credited - 0.002, "a:2")).granted
    assert (await s.grant(credited + 0.002, "a:2")).granted


async def test_no_credit_until_every_live_worker_published_and_at_most_a_tenth(
    store: Store,
) -> None:
    s = Script(store)
    await s.beat(0, "b")  # a second worker that has measured nothing yet
    assert (await s.grant(0)).granted
    await s.release(0.1, fastest=0.05)
    assert not (await s.grant(0.1 + ONE.period - 0.001, "a:1")).granted  # uncredited
    await s.beat(1.0, "b", fastest=0.02)  # now published: the fleet's least counts
    assert (await s.grant(1.2, "a:1")).granted
    await s.release(1.3, "a:1", fastest=0.05)
    assert not (await s.grant(1.3 + ONE.period - 0.017 - 0.001, "a:2")).granted
    assert (await s.grant(1.3 + ONE.period - 0.017 + 0.001, "a:2")).granted
    await s.beat(3.0, "b", fastest=5.0)  # a huge round trip: capped at a tenth of the period
    await s.beat(3.0, "a", fastest=5.0)
    await s.release(3.1, "a:2", fastest=5.0)
    assert not (await s.grant(3.1 + 0.9 * ONE.period - 0.001, "a:3")).granted
    assert (await s.grant(3.1 + 0.9 * ONE.period + 0.001, "a:3")).granted


async def test_a_held_call_cools_down_from_its_answer_less_the_hold(store: Store) -> None:
    s = Script(store)
    assert (await s.grant(0)).granted
    # Sent at 0.1, answered at 1.3: the server checked it at least 1 s before the answer.
    await s.release(1.3, took=1.2, server_hold=1.0)
    await s.frees_at(0.3 + ONE.period, "a:1")
    # The hold outweighs a credit (here at most a tenth of the period); the order is kept.
    await s.release(2.5, "a:1", ago=0.1, fastest=5.0, took=1.3, server_hold=1.0)
    await s.frees_at(1.4 + ONE.period, "a:2")
    assert (await s.state()).done == sorted((await s.state()).done)


async def test_a_held_call_answered_faster_than_its_hold_gets_no_hint(store: Store) -> None:
    s = Script(store)
    assert (await s.grant(0)).granted
    # 0.4 s: the hold did not happen (the user had left meanwhile); only the credit counts.
    await s.release(0.5, took=0.4, server_hold=1.0)
    await s.frees_at(0.5 + ONE.period, "a:1")
    await s.release(2.0, "a:1", fastest=0.05, took=0.05, server_hold=1.0)
    await s.frees_at(2.0 - 0.0425 + ONE.period, "a:2")


async def test_a_hint_never_starts_a_cool_down_before_the_call_was_sent(store: Store) -> None:
    s = Script(store)
    assert (await s.grant(0)).granted
    # A held call of 60 ms and a credit of a tenth of the period: no earlier than its send.
    await s.release(1.0, took=0.06, server_hold=0.05, fastest=5.0)
    await s.frees_at(0.94 + ONE.period, "a:1")


async def test_a_pause_stops_every_worker_and_keeps_its_length_across_a_clock_step(
    store: Store,
) -> None:
    s = Script(store, THREE)
    assert await s.pause(0, 2.0) == pytest.approx(2.0)
    refused = await s.grant(1.0, "other:0")
    assert not refused.granted and refused.paused == pytest.approx(1.0)
    assert (await s.beat(1.5, "other")).paused == pytest.approx(0.5)
    assert await s.pause(1.5, 0.1) == pytest.approx(0.5)  # a shorter pause changes nothing
    # The clock is set back 10 s: the pause still has its 2 s from its new start.
    assert (await s.grant(-8.0, "other:0")).paused == pytest.approx(2.0)
    assert (await s.grant(-5.9, "other:0")).granted


async def test_a_dead_workers_slot_comes_back_after_its_lease(store: Store) -> None:
    s = Script(store)
    assert (await s.grant(0, "dead:0", lease=1.0)).granted  # never released
    assert not (await s.grant(0.9, "live:0")).granted
    assert (await s.grant(1.01, "live:0")).granted
    await s.release(1.1, "live:0")
    assert (await s.beat(1.2, "live")).workers == 1  # the dead one's lease ran out too
    # A heartbeat renews a slot held: a live worker's long call keeps its slot.
    assert (await s.grant(2.2, "live:1", lease=1.0)).granted
    await s.beat(3.0, "live", ["live:1"])
    assert not (await s.grant(3.5, "other:0")).granted
    assert (await s.grant(13.01, "other:0")).granted  # the renewed lease is the store's


async def test_a_clock_set_back_never_frees_a_slot_early(store: Store) -> None:
    s = Script(store)
    assert (await s.grant(0)).granted
    await s.release(0.05)
    # Set back 10 s: the cool-down dated in the future restarts now; nothing is dropped.
    refused = await s.grant(-10.0, "a:1")
    assert not refused.granted and refused.wait == pytest.approx(ONE.period)
    assert not (await s.grant(-9.0, "a:1")).granted
    assert (await s.grant(-10.0 + ONE.period + 0.001, "a:1")).granted
    state = await s.state()
    assert all(at <= s.clock.now() for at in state.done)
    assert state.next_grant <= s.clock.now() + ONE.spacing


SIMULATED = [
    # (workers, round trip, request share, least share of the rate)
    (1, 0.001, 0.5, 0.98),
    (1, 0.05, 0.5, 0.97),
    (1, 0.05, 0.9, 0.97),  # jitter mostly on the way out
    (1, 0.05, 0.1, 0.97),  # mostly on the way back
    (1, 0.1, 0.5, 0.95),
    (3, 0.001, 0.5, 0.97),
    (3, 0.05, 0.5, 0.96),
]


@pytest.mark.parametrize(("workers", "round_trip", "share", "least"), SIMULATED)
async def test_workers_against_a_strict_window_draw_no_429_and_nearly_the_rate(
    store: Store, workers: int, round_trip: float, share: float, least: float
) -> None:
    clock: FakeClock = store.clock  # type: ignore[attr-defined]
    result = await flood_sim.run(
        store, clock, rate=30, workers=workers, round_trip=round_trip, request_share=share
    )
    assert result.refused == 0
    assert result.share(Rate.of(30), 12.0) >= least


HELD = [
    # (workers, round trip, held share, instant share, least share of the rate)
    (1, 0.05, 0.5, 0.0, 0.94),  # half the calls held 1 s, as a mixed backlog's unbans
    (1, 0.05, 0.25, 0.25, 0.94),  # half declared, half of those answered at once
    (3, 0.05, 0.5, 0.0, 0.94),
]


@pytest.mark.parametrize(("workers", "round_trip", "held", "instant", "least"), HELD)
async def test_held_calls_against_a_strict_window_draw_no_429_and_nearly_the_rate(
    store: Store, workers: int, round_trip: float, held: float, instant: float, least: float
) -> None:
    # Each worker may have 40 calls in flight: held ones keep their slots for a second.
    clock: FakeClock = store.clock  # type: ignore[attr-defined]
    result = await flood_sim.run(
        store, clock, rate=30, workers=workers, round_trip=round_trip, concurrency=40,
        hold=1.0, held_share=held, instant_share=instant,
    )  # fmt: skip
    assert result.refused == 0
    assert result.share(Rate.of(30), 12.0) >= least
