"""The shared flood budget without a server: SQLite-backed budgets of several "workers" in one
process, the fallback when the store is unreachable, the choice of budget and its settings."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sqlite3
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from botqueue.config import load_settings
from botqueue.errors import ConfigurationError
from botqueue.observability.metrics import Metrics
from botqueue.telegram.flood import (
    MONOTONIC,
    Budget,
    BudgetUnavailable,
    MemoryStore,
    Rate,
    State,
    open_budget,
    rule,
    sidecar_path,
)
from botqueue.telegram.flood.store import T, Work
from botqueue.telegram.flood.store_redis import RedisStore
from botqueue.telegram.flood.store_sqlite import SqliteStore
from botqueue.telegram.limiter import FloodLimiter

TOKEN = "123456789:AAE-secret-token-value"


async def hold(budget: Budget, seconds: float, calls: list[tuple[float, float]]) -> None:
    """One call of ``seconds`` within the budget, recorded as (granted, completed)."""
    grant = await budget.acquire()
    assert grant is not None
    started = time.monotonic()
    await asyncio.sleep(seconds)
    calls.append((started, time.monotonic()))
    await budget.release(grant, started, time.monotonic())


async def test_workers_sharing_a_file_never_exceed_the_rate_together(tmp_path: Path) -> None:
    # The store on the monotonic clock the calls are timed with: this machine's wall clock is
    # stepped now and then, which would show as overlaps that no server clock would see.
    path = str(tmp_path / "f.db")
    budgets = [Budget(SqliteStore(path, TOKEN, clock=MONOTONIC), 10) for _ in range(3)]
    calls: list[tuple[float, float]] = []
    await asyncio.gather(*(hold(b, 0.002 * (n % 5), calls) for n in range(12) for b in budgets))
    # A server checks each call somewhere between its grant and its completion: wherever,
    # no one-second window holds more than ten, since a slot cools down from completion.
    ends = sorted(end for _, end in calls)
    starts = sorted(start for start, _ in calls)
    for i, start in enumerate(starts[10:], start=10):
        assert start >= ends[i - 10] + 1.0 - 0.01
    assert {b.workers for b in budgets} == {3}
    for budget in budgets:
        await budget.aclose()


async def test_a_dead_workers_slot_comes_back_after_the_lease(tmp_path: Path) -> None:
    path = str(tmp_path / "f.db")
    dead = SqliteStore(path, TOKEN, lease=1.0)
    # A grant nobody will release or renew: its worker is gone.
    take = functools.partial(rule.grant, rate=Rate.of(1), slot="gone:0", lease=1.0)
    assert (await dead.transact(take)).granted
    await dead.aclose()
    budget = Budget(SqliteStore(path, TOKEN, lease=1.0), 1)
    started = time.monotonic()
    grant = await budget.acquire()
    assert grant is not None and grant.shared
    assert 0.5 < time.monotonic() - started < 3.0
    await budget.release(grant, started, time.monotonic())
    await budget.aclose()


class FlakyStore:
    """An SqliteStore that can be made unreachable."""

    shared = True

    def __init__(self, inner: SqliteStore) -> None:
        self.inner, self.up, self.name, self.lease = inner, True, "flaky", inner.lease

    async def transact(self, work: Work[T]) -> T:
        if not self.up:
            raise BudgetUnavailable("ConnectionError: refused")
        return await self.inner.transact(work)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_unreachable_store_falls_back_then_rejoins(tmp_path: Path) -> None:
    path = str(tmp_path / "f.db")
    store = FlakyStore(SqliteStore(path, TOKEN, lease=3.0))
    budget = Budget(store, 20, fallback_share=0.5)
    limiter = FloodLimiter(budget=budget)

    async def call() -> None:
        await limiter.call("getMe", lambda: asyncio.sleep(0))

    with capture_logs() as logs:
        await call()
        assert limiter.stats.budget_shared is True
        store.up = False
        for _ in range(5):
            await call()
        assert limiter.stats.budget_shared is False
        limiter.pause(0.2)  # a 429 while alone: paused here all the same
        assert limiter.remaining_pause() > 0
        store.up = True
        deadline = time.monotonic() + 5
        while not budget.shared:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await call()
    events = [entry["event"] for entry in logs]
    assert sum("unreachable" in e for e in events) == 1, events
    assert sum("reachable again" in e for e in events) == 1, events
    assert next(e for e in logs if "unreachable" in e["event"])["rate"] == 10.0
    await limiter.aclose()
    # The calls made alone were handed to the store at the rejoin (their cool-downs count).
    with contextlib.closing(sqlite3.connect(path)) as conn:
        blob = conn.execute("SELECT state FROM flood_state").fetchone()[0]
    assert len(State.loads(blob).done) >= 2


def test_the_default_budget_follows_the_queue(tmp_path: Path) -> None:
    queue = f"sqlite:///{tmp_path / 'queue.db'}"
    assert sidecar_path(queue) == str(tmp_path / "queue.flood.db")
    shared = open_budget(30, token=TOKEN, queue_url=queue)
    assert isinstance(shared.store, SqliteStore)
    assert shared.store.path == str(tmp_path / "queue.flood.db")
    sqs = "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo"
    assert isinstance(open_budget(30, token=TOKEN, queue_url=sqs).store, MemoryStore)
    local = open_budget(30, token=TOKEN, url="local", queue_url=queue)
    assert isinstance(local.store, MemoryStore)
    on_redis = open_budget(30, token=TOKEN, url="redis://:pw@127.0.0.1:1/0", queue_url=sqs)
    assert isinstance(on_redis.store, RedisStore)
    assert on_redis.store.name == "redis://127.0.0.1:1/0"  # no password in logs
    explicit = open_budget(30, token=TOKEN, url=f"sqlite:///{tmp_path / 'b.db'}", queue_url=sqs)
    assert isinstance(explicit.store, SqliteStore)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TELEGRAM_RATE_LIMIT_URL", "http://127.0.0.1:6379"),
        ("TELEGRAM_RATE_LIMIT_URL", "sqlite://"),
        ("TELEGRAM_RATE_LIMIT_LEASE", "0.5"),
        ("TELEGRAM_RATE_LIMIT_FALLBACK_SHARE", "0"),
        ("TELEGRAM_RATE_LIMIT_FALLBACK_SHARE", "1.5"),
    ],
)
def test_malformed_budget_settings_are_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    for key in [k for k in os.environ if k.startswith("TELEGRAM_RATE_LIMIT")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{name}: ")
    assert "\n" not in str(caught.value)


def test_budget_settings_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("TELEGRAM_RATE_LIMIT")]:
        monkeypatch.delenv(key)
    settings = load_settings()
    assert settings.telegram_rate_limit_url is None
    assert settings.telegram_rate_limit_lease == 10.0
    assert settings.telegram_rate_limit_fallback_share is None
    monkeypatch.setenv("TELEGRAM_RATE_LIMIT_URL", "rediss://user:pw@redis.example:6380/2")
    assert load_settings().telegram_rate_limit_url == "rediss://user:pw@redis.example:6380/2"


async def test_the_shared_gauge_shows_only_for_a_shared_budget(tmp_path: Path) -> None:
    def gauge(limiter: FloodLimiter) -> float | None:
        metrics = Metrics(CollectorRegistry())
        metrics.track_flood(limiter.stats)
        return metrics.registry.get_sample_value("botqueue_flood_budget_shared")

    assert gauge(FloodLimiter()) is None
    shared = FloodLimiter(budget=Budget(SqliteStore(str(tmp_path / "f.db"), TOKEN), 5))
    assert gauge(shared) == 1.0
    await shared.aclose()
