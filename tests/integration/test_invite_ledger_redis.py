"""The invite-link ledger in Redis: workers on several hosts share it, its keys name no token
or link and expire with their links, its failures are retryable and show no password, and
``open_ledger`` picks it (also from the flood budget's Redis when the queue is SQS).

The contract every backend keeps (record, held, forget, expiry) and the sandbox scenarios run
over Redis too, in test_invite_ledger.py; this module holds what is Redis' own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import redis

from botqueue.config import load_settings
from botqueue.errors import ConfigurationError, RetryableError
from botqueue.sandbox import SandboxControl, SandboxControlError, SandboxServer
from botqueue.telegram import TelegramBotService
from botqueue.telegram.links import LedgerUnavailable, MemoryLedger, SqliteLedger, open_ledger
from botqueue.telegram.links_redis import SKEW_SECONDS, RedisLedger
from tests.factories import DAN, invite
from tests.integration.redis_server import (  # noqa: F401 (fixtures, used by name)
    RedisServer,
    redis_server_fixture,
    redis_url_fixture,
    start_redis,
)
from tests.integration.sqs_servers import free_port

from .test_invite_ledger import service_with

TOKEN = "123456:AAsecret-token-of-the-bot"
SQS = "https://sqs.us-east-1.amazonaws.com/123456789012/ops.fifo"
A, B = "https://t.me/+aaaa", "https://t.me/+bbbb"


@pytest.fixture
async def hosts(redis_url: str) -> AsyncIterator[tuple[RedisLedger, RedisLedger]]:
    """Two ledgers on one server, as two hosts' workers would have."""
    first, second = RedisLedger(redis_url, TOKEN), RedisLedger(redis_url, TOKEN)
    yield first, second
    await first.aclose()
    await second.aclose()


def keys(url: str) -> dict[str, int]:
    """Every key on the server, with its TTL in seconds."""
    with redis.Redis.from_url(url) as client:
        return {key.decode(): int(client.ttl(key)) for key in client.scan_iter()}


async def test_two_hosts_share_one_ledger(hosts: tuple[RedisLedger, RedisLedger]) -> None:
    first, second = hosts
    await first.record("-1001", 7, A, time.time() + 60)
    await second.record("-1001", 7, B, time.time() + 60)
    assert await second.held("-1001", 7) == [A, B]  # oldest first, whoever recorded it
    await second.forget(A)  # forget needs only the URL, also for another host's link
    assert await first.held("-1001", 7) == [B]
    await first.forget("https://t.me/+never-recorded")
    assert await first.held("-1001", 7) == [B]


async def test_each_bot_has_its_own_links_under_a_hash_of_its_token(redis_url: str) -> None:
    ours, theirs = RedisLedger(redis_url, TOKEN), RedisLedger(redis_url, "654321:AAother")
    await ours.record("-1001", 7, A, time.time() + 60)
    assert await theirs.held("-1001", 7) == []
    await theirs.forget(A)  # another bot's forget leaves ours alone
    assert await ours.held("-1001", 7) == [A]
    names = list(keys(redis_url))
    assert len(names) == 2 and all(
        name.startswith(f"botqueue:links:{{{ours.bot}}}:") for name in names
    )
    assert not any(TOKEN in name or "secret" in name or "aaaa" in name for name in names)
    await ours.aclose()
    await theirs.aclose()


async def test_keys_expire_a_little_after_their_latest_link(
    hosts: tuple[RedisLedger, RedisLedger], redis_url: str
) -> None:
    ledger = hosts[0]
    await ledger.record("-1001", 7, A, time.time() + 3600)
    await ledger.record("-1001", 7, B, time.time() + 60)  # a shorter link shortens nothing
    ttls = keys(redis_url)
    user = ledger._user_key("-1001", 7)
    assert 3600 < ttls.pop(user) <= 3600 + SKEW_SECONDS + 1
    assert sorted(ttls.values())[0] <= 60 + SKEW_SECONDS + 1  # B's owner key: its own link's
    assert all(ttl > 60 for ttl in ttls.values())


async def test_held_drops_expired_links_from_the_server(
    hosts: tuple[RedisLedger, RedisLedger], redis_url: str
) -> None:
    ledger = hosts[0]
    await ledger.record("-1001", 7, A, time.time() - 1)
    await ledger.record("-1001", 7, B, time.time() + 60)
    assert await ledger.held("-1001", 7) == [B]
    await ledger.forget(B)
    assert keys(redis_url) == {}  # the hash and both owner keys are gone


async def test_a_restarted_server_is_used_again_at_once(tmp_path: Path) -> None:
    server = start_redis(tmp_path)
    try:
        ledger = RedisLedger(server.url, TOKEN)
        await ledger.record("-1001", 7, A, time.time() + 60)
        server.stop()
        with pytest.raises(LedgerUnavailable):
            await ledger.held("-1001", 7)
        server.start()  # no persistence: it comes back empty
        assert await ledger.held("-1001", 7) == []
        await ledger.aclose()
    finally:
        server.stop()


async def test_an_unreachable_server_is_retryable_and_shows_no_password() -> None:
    ledger = RedisLedger(f"redis://botqueue:hunter2@127.0.0.1:{free_port()}/0", TOKEN)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: ledger.record("-1001", 7, A, time.time() + 60),
        lambda: ledger.held("-1001", 7),
        lambda: ledger.forget(A),
    ]
    for call in calls:
        with pytest.raises(LedgerUnavailable) as caught:
            await call()
        assert isinstance(caught.value, RetryableError)
        assert "invite-link ledger redis://127.0.0.1:" in str(caught.value)
        assert "hunter2" not in str(caught.value) and TOKEN not in str(caught.value)
    await ledger.aclose()


async def test_workers_on_two_hosts_leave_one_valid_link(
    sandbox: SandboxServer, control: SandboxControl, redis_url: str
) -> None:
    # A worker sends the link and dies before deleting the message; one elsewhere redelivers.
    first = await service_with(sandbox, RedisLedger(redis_url, sandbox.token))
    old = (await first.invite_user(invite(sub="s1"))).detail["inviteLink"]
    second = await service_with(sandbox, RedisLedger(redis_url, sandbox.token))
    new = (await second.invite_user(invite(sub="s1"))).detail["inviteLink"]
    with pytest.raises(SandboxControlError, match="revoked"):
        await control.join(DAN, old)
    assert await control.join(DAN, new) == "member"
    await first.aclose()
    await second.aclose()


def test_open_ledger_takes_redis_urls() -> None:
    for url in ("redis://:pw@cache:6379/2", "rediss://cache:6380/0", "unix:///run/redis.sock"):
        ledger = open_ledger(TOKEN, url=url, queue_url="sqlite:///q.db")
        assert isinstance(ledger, RedisLedger) and "pw" not in ledger.name
    with pytest.raises(ConfigurationError, match="TELEGRAM_INVITE_LEDGER_URL") as caught:
        open_ledger(TOKEN, url="redis://user:hunter2@cache:port/0")
    assert "hunter2" not in str(caught.value)


def test_with_sqs_the_ledger_defaults_to_the_flood_budgets_redis(tmp_path: Path) -> None:
    shared = open_ledger(TOKEN, queue_url=SQS, rate_limit_url="redis://:pw@cache:6379/1")
    assert isinstance(shared, RedisLedger) and shared.name == "redis://cache:6379/1"
    # Not when the budget is not in Redis, nor when the ledger is named, nor beside a file.
    assert isinstance(open_ledger(TOKEN, queue_url=SQS, rate_limit_url="local"), MemoryLedger)
    assert isinstance(open_ledger(TOKEN, queue_url=SQS), MemoryLedger)
    named = open_ledger(TOKEN, url="local", queue_url=SQS, rate_limit_url="redis://cache/0")
    assert isinstance(named, MemoryLedger)
    beside = open_ledger(
        TOKEN, queue_url=f"sqlite:///{tmp_path}/q.db", rate_limit_url="redis://cache/0"
    )
    assert isinstance(beside, SqliteLedger)


async def test_the_worker_wires_the_default_from_its_settings() -> None:
    settings = load_settings(
        bot_operations_queue_url=SQS,
        telegram_bot_token=TOKEN,
        telegram_rate_limit_url="redis://cache:6379/0",
    )
    service = TelegramBotService.from_settings(settings)
    assert isinstance(service.links, RedisLedger) and service.links.name == "redis://cache:6379/0"
    await service.links.aclose()
    with pytest.raises(ConfigurationError, match="TELEGRAM_INVITE_LEDGER_URL") as caught:
        load_settings(telegram_invite_ledger_url="memcached://u:hunter2@cache/0")
    assert "hunter2" not in str(caught.value)
