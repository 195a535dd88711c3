"""One flood budget per token, shared by worker processes: through the SQLite file beside the
embedded queue and through Redis, against the sandbox's strict per-token limit."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from telegram import Bot
from telegram.request import HTTPXRequest

from botqueue import BotQueueProducer
from botqueue.operations import RemoveUser, VerifyPermissions
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.flood import State, open_budget, sidecar_path
from botqueue.telegram.flood.store_redis import RedisStore
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService, bot_api_base
from botqueue.transports import SqliteTransport
from tests.integration.redis_server import (  # noqa: F401 (fixtures, used by name)
    RedisServer,
    redis_server_fixture,
    redis_url_fixture,
    start_redis,
)

from .test_flood_control import Timeline
from .worker_process import WorkerProcess, sample, until

PREMIUM = "-1001000000001"
UNREACHABLE, REJOINED = "flood budget unreachable", "flood budget reachable again"


@pytest.fixture(params=["sqlite", "redis"])
def budget_url(request: pytest.FixtureRequest) -> str | None:
    """TELEGRAM_RATE_LIMIT_URL: unset (the file beside the embedded queue) or a Redis URL."""
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("redis_url")
    return url


def worker_env(
    sandbox: SandboxServer, db_url: str, budget_url: str | None, **extra: str
) -> dict[str, str]:
    """Environment of a `botqueue worker` on the embedded queue against the sandbox."""
    env = {
        "BOT_OPERATIONS_QUEUE_URL": db_url,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "TELEGRAM_CHANNEL_RATE": "1000",
        "BOTQUEUE_LOG_LEVEL": "info",
        **extra,
    }
    if budget_url is not None:
        env["TELEGRAM_RATE_LIMIT_URL"] = budget_url
    return env


async def enqueue_removals(db_url: str, control: SandboxControl, first: int, count: int) -> None:
    """Removals of known users who never joined: one getChatMember each."""
    for n in range(first, first + count):
        await control.add_user({"id": 5000 + n, "first_name": f"U{n}"})
    ops = [
        RemoveUser(user_id=5000 + n, channel_id=PREMIUM, subscription_id=f"b{n}", reason="expiry")
        for n in range(first, first + count)
    ]
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue_many(ops)


async def settled(db_url: str) -> bool:
    """Nothing left on the queue, nothing in flight."""
    async with SqliteTransport(db_url) as transport:
        stats = await transport.stats()
    return (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 0)


def held_slots(db_url: str, budget_url: str | None, token: str) -> int:
    """Slots of the token's shared budget whose lease has not run out."""
    if budget_url is None:
        path = sidecar_path(db_url)
        assert path is not None
        with contextlib.closing(sqlite3.connect(path)) as conn:
            row = conn.execute("SELECT state FROM flood_state").fetchone()
        state, now = State.loads(row[0] if row else None), time.time()
    else:
        state, now = redis_state(budget_url, token)
    return sum(1 for expires in state.busy.values() if expires > now)


def redis_state(budget_url: str, token: str) -> tuple[State, float]:
    """The token's budget state in Redis, and the server's time."""
    with redis.Redis.from_url(budget_url) as client:
        seconds, micros = client.time()
        blob = client.get(RedisStore(budget_url, token).key)
    return State.loads(blob), seconds + micros / 1e6


async def test_three_workers_on_one_token_draw_no_429(
    sandbox: SandboxServer, control: SandboxControl, db_url: str, budget_url: str | None
) -> None:
    await control.set_flood(10)
    await enqueue_removals(db_url, control, 0, 60)
    env = worker_env(sandbox, db_url, budget_url, TELEGRAM_RATE_LIMIT="10")
    workers = [WorkerProcess(env, "--drain") for _ in range(3)]
    for worker in workers:
        await worker.__aenter__()
    try:
        codes = await asyncio.gather(*(worker.wait_exit(90) for worker in workers))
    except TimeoutError:
        pytest.fail("a worker did not drain: " + "\n---\n".join(w.output() for w in workers))
    assert codes == [0, 0, 0], [w.output() for w in workers]
    assert await settled(db_url)
    counts = await control.requests()
    assert counts["methods"]["getChatMember"] >= 60
    assert counts["rate_limited"] == 0, counts
    assert not any(UNREACHABLE in w.output() for w in workers)
    assert not any("Traceback" in w.output() or "Task was destroyed" in w.output() for w in workers)


async def test_a_killed_worker_gives_its_slots_back_within_the_lease(
    sandbox: SandboxServer, control: SandboxControl, db_url: str, budget_url: str | None
) -> None:
    # Two slots in all; both calls of the first worker never answer, then it is SIGKILLed.
    await control.hang("getChatMember", count=2)
    await enqueue_removals(db_url, control, 0, 2)
    lease = 2.0
    env = worker_env(
        sandbox,
        db_url,
        budget_url,
        TELEGRAM_RATE_LIMIT="2",
        TELEGRAM_RATE_LIMIT_LEASE=str(lease),
        BOTQUEUE_VISIBILITY_TIMEOUT="3",
    )
    async with WorkerProcess(env, "--concurrency", "2") as doomed:

        async def both_hung() -> bool:
            methods = (await control.requests())["methods"]
            return methods.get("getChatMember", 0) >= 2

        await until(both_hung, 60)
        assert held_slots(db_url, budget_url, sandbox.token) == 2
        assert doomed.process is not None
        doomed.process.kill()
        killed = time.monotonic()
        await doomed.wait_exit()
    while held_slots(db_url, budget_url, sandbox.token):
        assert time.monotonic() - killed < lease + 5, "the slots outlived their lease"
        await asyncio.sleep(0.1)
    # Another worker gets the slots and does the work (the messages come back after 3 s).
    async with WorkerProcess(env, "--drain") as heir:
        assert await heir.wait_exit(60) == 0, heir.output()
    assert await settled(db_url)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis server of this test alone, to stop and start again."""
    server = start_redis(tmp_path)
    try:
        yield server
    finally:
        server.stop()


async def test_redis_stopped_mid_run_then_shared_again(
    sandbox: SandboxServer, control: SandboxControl, db_url: str, own_redis: RedisServer
) -> None:
    env = worker_env(
        sandbox, db_url, own_redis.url, TELEGRAM_RATE_LIMIT="20", BOTQUEUE_METRICS_PORT="0"
    )
    async with WorkerProcess(env) as worker:
        await worker.listening()

        async def shared_is(value: float) -> bool:
            return sample(await worker.scrape(), "botqueue_flood_budget_shared") == value

        async def done() -> bool:
            return await settled(db_url)

        await enqueue_removals(db_url, control, 0, 10)
        await until(done)
        assert await shared_is(1)
        own_redis.stop()
        await enqueue_removals(db_url, control, 10, 10)
        await until(done)  # work goes on, on the local fallback
        assert await shared_is(0)
        own_redis.start()
        await until(lambda: shared_is(1))
        await enqueue_removals(db_url, control, 20, 10)
        await until(done)
        assert len(redis_state(own_redis.url, sandbox.token)[0].workers) == 1
        assert await worker.stop() == 0
        assert not redis_state(own_redis.url, sandbox.token)[0].workers  # it left at shutdown
    output = worker.output()
    assert output.count(UNREACHABLE) == 1, output
    assert output.count(REJOINED) == 1, output
    assert (await control.requests())["methods"]["getChatMember"] >= 30


async def test_a_429_seen_by_one_worker_pauses_the_others(
    sandbox: SandboxServer, control: SandboxControl, db_url: str, budget_url: str | None
) -> None:
    def worker(timeline: Timeline) -> TelegramBotService:
        """What one worker process holds: its service and its view of the shared budget."""
        hooks = {"request": [timeline.on_request], "response": [timeline.on_response]}
        request = HTTPXRequest(httpx_kwargs={"event_hooks": hooks})
        bot = Bot(sandbox.token, base_url=bot_api_base(sandbox.url), request=request)
        budget = open_budget(30, token=sandbox.token, url=budget_url, queue_url=db_url, lease=3)
        return TelegramBotService(
            sandbox.token, bot=bot, limiter=FloodLimiter(RateLimits(), budget)
        )

    first, other = Timeline(), Timeline()
    services = [worker(first), worker(other)]
    for service in services:
        await service.start()
    await control.inject_fault(
        "getChatMember", 429, "Too Many Requests: retry after 3", retry_after=3
    )
    verify = VerifyPermissions(channel_id=PREMIUM)
    refused = asyncio.create_task(services[0].verify_permissions(verify))
    await first.refused.wait()
    # The other worker made no call since; it learns of the pause from the store.
    deadline = time.monotonic() + 5
    while services[1].limiter.remaining_pause() == 0:
        assert time.monotonic() < deadline, "the pause did not reach the other worker"
        await asyncio.sleep(0.05)
    assert services[1].limiter.remaining_pause() <= 3
    outcome = await services[1].verify_permissions(verify)
    assert outcome.detail["verified"]
    assert min(t for t in other.sent if t > first.limited[0]) >= first.limited[0] + 3 - 0.05
    assert (await refused).detail["verified"]
    for service in services:
        await service.aclose()
        await service.limiter.aclose()
