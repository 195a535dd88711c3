"""The invite-link ledger: a removal revokes the user's links, an invite its earlier ones, and
a file ledger carries this from one (killed) worker to the next (issue 12, SIGKILL)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from botqueue.errors import ConfigurationError
from botqueue.sandbox import SandboxControl, SandboxControlError, SandboxServer
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.links import LinkLedger, MemoryLedger, SqliteLedger, open_ledger
from botqueue.telegram.service import TelegramBotService
from tests.factories import DAN, PREMIUM, invite, remove
from tests.integration.ledgers import ledger_fixture  # noqa: F401 (a fixture, used by name)
from tests.integration.redis_server import (  # noqa: F401 (fixtures, used by name)
    redis_server_fixture,
    redis_url_fixture,
)


async def service_with(sandbox: SandboxServer, ledger: LinkLedger) -> TelegramBotService:
    limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000, per_user_chat=100))
    service = TelegramBotService(sandbox.token, api_url=sandbox.url, limiter=limiter, links=ledger)
    await service.start()
    return service


async def test_the_ledger_keeps_links_until_forgotten_or_expired(ledger: LinkLedger) -> None:
    now = time.time()
    await ledger.record("-1001", 7, "https://t.me/+a", now + 60)
    await ledger.record("-1001", 7, "https://t.me/+b", now + 60)
    await ledger.record("-1001", 7, "https://t.me/+old", now - 1)
    await ledger.record("-1002", 7, "https://t.me/+c", now + 60)
    assert await ledger.held("-1001", 7) == ["https://t.me/+a", "https://t.me/+b"]
    await ledger.forget("https://t.me/+a")
    assert await ledger.held("-1001", 7) == ["https://t.me/+b"]
    assert await ledger.held("-1001", 8) == []


async def test_a_file_ledger_outlives_its_process(tmp_path: Path) -> None:
    first = SqliteLedger(str(tmp_path / "l.db"), "token")
    await first.record("-1001", 7, "https://t.me/+a", time.time() + 60)
    await first.aclose()  # as if the worker had died
    second = SqliteLedger(str(tmp_path / "l.db"), "token")
    other_bot = SqliteLedger(str(tmp_path / "l.db"), "another token")
    assert await second.held("-1001", 7) == ["https://t.me/+a"]
    assert await other_bot.held("-1001", 7) == []
    await second.aclose()
    await other_bot.aclose()


def test_open_ledger_follows_the_setting_and_the_queue(tmp_path: Path) -> None:
    beside = open_ledger("t", queue_url=f"sqlite:///{tmp_path}/q.db")
    assert isinstance(beside, SqliteLedger) and beside.path == f"{tmp_path}/q.links.db"
    assert isinstance(open_ledger("t", queue_url="https://sqs.example/1/q.fifo"), MemoryLedger)
    assert isinstance(open_ledger("t", url="local", queue_url="sqlite:///q.db"), MemoryLedger)
    named = open_ledger("t", url=f"sqlite:///{tmp_path}/l.db")
    assert isinstance(named, SqliteLedger) and named.path == f"{tmp_path}/l.db"
    with pytest.raises(ConfigurationError, match="TELEGRAM_INVITE_LEDGER_URL"):
        open_ledger("t", url="memcached://localhost")


async def test_a_removal_revokes_the_link_a_user_never_used(
    sandbox: SandboxServer, control: SandboxControl, ledger: LinkLedger
) -> None:
    service = await service_with(sandbox, ledger)
    link = (await service.invite_user(invite(sub="s1"))).detail["inviteLink"]
    assert (await service.remove_user(remove(sub="s1"))).status == "noop"  # never joined
    with pytest.raises(SandboxControlError, match="revoked"):
        await control.join(DAN, link)
    await service.aclose()


async def test_a_removed_member_cannot_come_back_through_their_link(
    sandbox: SandboxServer, control: SandboxControl, ledger: LinkLedger
) -> None:
    service = await service_with(sandbox, ledger)
    link = (await service.invite_user(invite(sub="s1"))).detail["inviteLink"]
    assert await control.join(DAN, link) == "member"
    assert (await service.remove_user(remove(sub="s1"))).status == "succeeded"
    with pytest.raises(SandboxControlError, match="revoked"):
        await control.join(DAN, link)  # its single place was freed by the removal
    assert DAN not in (await control.members(PREMIUM))["members"]
    await service.aclose()


async def test_a_second_delivery_revokes_the_first_link_across_workers(
    sandbox: SandboxServer, control: SandboxControl, tmp_path: Path
) -> None:
    # A worker sends the link and dies before deleting the message; another delivers it again.
    path = str(tmp_path / "links.db")
    first = await service_with(sandbox, SqliteLedger(path, sandbox.token))
    old = (await first.invite_user(invite(sub="s1"))).detail["inviteLink"]
    second = await service_with(sandbox, SqliteLedger(path, sandbox.token))
    new = (await second.invite_user(invite(sub="s1"))).detail["inviteLink"]
    assert len(await control.messages(chat_id=DAN)) == 2  # the duplicate at-least-once allows
    with pytest.raises(SandboxControlError, match="revoked"):
        await control.join(DAN, old)
    assert await control.join(DAN, new) == "member"
    await first.aclose()
    await second.aclose()
