"""Flood control at a distance: a window credits part of the round trips it measured, and a
strict one-second server window still never sees more than N calls (no 429)."""

from __future__ import annotations

import asyncio
import random
import time

import httpx
import pytest

from botqueue.operations import VerifyPermissions
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.sandbox.faults import FloodControl
from botqueue.telegram.flood import Budget, FakeClock, MemoryStore, RoundTrips, rule
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService

PREMIUM = "-1001000000001"
N, LATENCY, JITTER, SECONDS = 20, 0.1, 0.2, 5.0
FLOORS = LATENCY * (1 - JITTER)  # the least a call's two legs can add up to


def credit_of(budget: Budget) -> float:
    """The credit an in-process budget gives its next answered call."""
    assert isinstance(budget.store, MemoryStore)
    return rule.credit(budget.store.state, budget.window, budget.owner)


def test_round_trips_wait_for_enough_answers_over_two_periods() -> None:
    trips = RoundTrips()
    assert trips.fastest(0.0, span=2.0, samples=16) is None
    for k in range(15):
        trips.add(0.05 + k / 1000, now=k / 5)
    assert trips.fastest(3.0, span=2.0, samples=16) is None  # 15 answers: not enough
    trips.add(0.2, now=3.0)
    assert trips.fastest(3.0, span=2.0, samples=16) == 0.05
    assert trips.fastest(3.0, span=3.5, samples=16) is None  # they cover 3 s, not 3.5
    assert trips.fastest(61.0, span=2.0, samples=16) is None  # forgotten after a minute
    fresh = RoundTrips()
    for k in range(40):  # a burst: many answers, within a fraction of a second
        fresh.add(0.05, now=k / 100)
    assert fresh.fastest(0.4, span=2.0, samples=16) is None


async def test_no_credit_for_a_call_never_stamped_or_that_raised() -> None:
    clock = FakeClock()
    budget = Budget(None, 8, clock=clock)
    assert isinstance(budget.store, MemoryStore)
    while budget.fastest() is None:  # 200 ms round trips, stamped: the estimate starts
        grant = await budget.acquire()
        assert grant is not None
        clock.advance(0.2)
        await budget.release(grant, clock.now() - 0.2, clock.now())
    assert credit_of(budget) == pytest.approx(0.1 * budget.period)  # the cap

    async def cools_down_early(stamp: bool, fail: bool) -> bool:
        clock.advance(budget.period)  # every earlier cool-down is over
        assert budget.idle
        grant = await budget.acquire()
        assert grant is not None
        clock.advance(0.2)
        sent_at = clock.now() - 0.2 if stamp else None
        await budget.release(grant, sent_at, clock.now(), answered=not fail)
        # Half the credit before a full period after the completion.
        clock.advance(budget.period - 0.05)
        return budget.idle

    assert await cools_down_early(stamp=True, fail=False)
    assert not await cools_down_early(stamp=False, fail=False)
    assert not await cools_down_early(stamp=True, fail=True)


async def test_slow_first_calls_and_asymmetric_legs_stay_in_a_strict_window() -> None:
    """In-process: the real strict window of the sandbox, checking each call between its legs."""
    server, window, rng = FloodControl(), Budget(None, 10), random.Random(3)
    server.set_rate(10)
    refused, calls = 0, 0
    deadline = time.monotonic() + SECONDS

    async def call() -> None:
        nonlocal refused, calls
        async with window.slot():
            calls += 1
            # The first calls open connections (a 300 ms handshake before the request);
            # afterwards 60 ms out and 20 ms back, each ±20%.
            await asyncio.sleep((0.3 if calls <= 10 else 0.0) + 0.06 * rng.uniform(0.8, 1.2))
            refused += server.admit("bot") is not None
            await asyncio.sleep(0.02 * rng.uniform(0.8, 1.2))

    async def caller() -> None:
        while time.monotonic() < deadline:
            await call()

    await asyncio.gather(*(caller() for _ in range(20)))
    assert refused == 0
    assert 0 < credit_of(window) <= 0.08 * 0.8  # within the least of out + back


async def test_a_limiter_at_a_distance_draws_no_429(
    sandbox: SandboxServer, control: SandboxControl
) -> None:
    """The service's limiter, 100 ms ± 20% round trips split evenly between the two legs."""
    await control.set_flood(N)
    await control.set_latency("*", LATENCY, jitter=JITTER, request_share=0.5)
    limiter = FloodLimiter(RateLimits(overall=N, per_channel=N))
    service = TelegramBotService(sandbox.token, api_url=sandbox.url, limiter=limiter)
    await service.start()
    verify, deadline = VerifyPermissions(channel_id=PREMIUM), time.monotonic() + SECONDS

    async def handler() -> None:
        while time.monotonic() < deadline:
            assert (await service.verify_permissions(verify)).detail["verified"]

    await asyncio.gather(*(handler() for _ in range(2 * N)))
    await service.aclose()
    assert (await control.requests())["rate_limited"] == 0
    assert limiter.stats.rate_limited == 0


@pytest.mark.parametrize("request_share", [0.0, 1.0], ids=["all-on-the-answer", "all-on-the-way"])
async def test_the_credit_stays_within_the_legs(
    sandbox: SandboxServer, control: SandboxControl, request_share: float
) -> None:
    """The whole round trip before the server's check, or after it: still no 429."""
    await control.set_flood(N)
    await control.set_latency("*", LATENCY, jitter=JITTER, request_share=request_share)
    window, statuses = Budget(None, N), list[int]()
    deadline = time.monotonic() + SECONDS
    async with httpx.AsyncClient(base_url=f"{sandbox.api_base}{sandbox.token}/") as client:

        async def caller() -> None:
            while time.monotonic() < deadline:
                async with window.slot():
                    statuses.append((await client.post("getMe")).status_code)

        await asyncio.gather(*(caller() for _ in range(2 * N)))
    assert set(statuses) == {200}
    assert (await control.requests())["rate_limited"] == 0
    assert 0 < credit_of(window) <= FLOORS
