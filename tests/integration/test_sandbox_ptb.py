"""python-telegram-bot (the worker's client) parses the sandbox's results and errors: it posts
form fields with JSON-encoded values, and requires fields aiogram does not."""

from __future__ import annotations

import datetime as dtm
from collections.abc import AsyncIterator

import pytest
from telegram import Bot, ChatMemberAdministrator, ChatMemberBanned, ChatMemberLeft
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter

from botqueue.sandbox import SandboxControl, SandboxServer

PREMIUM, VIP = -1001000000001, -1001000000002


@pytest.fixture
async def bot(sandbox: SandboxServer) -> AsyncIterator[Bot]:
    async with Bot(sandbox.token, base_url=sandbox.api_base) as client:
        yield client


async def test_results_parse(bot: Bot, control: SandboxControl) -> None:
    assert bot.id == 123456789 and bot.username == "sandbox_bot"
    chat = await bot.get_chat(PREMIUM)
    assert chat.title == "Premium Signals"
    me = await bot.get_chat_member(PREMIUM, bot.id)
    assert isinstance(me, ChatMemberAdministrator) and me.can_invite_users
    expires = dtm.datetime.now(dtm.UTC) + dtm.timedelta(hours=1)
    link = await bot.create_chat_invite_link(
        PREMIUM, expire_date=expires, member_limit=1, name="sub-7"
    )
    assert link.member_limit == 1 and link.expire_date is not None
    message = await bot.send_message(1001, f"Join: {link.invite_link}")
    assert message.chat_id == 1001 and link.invite_link in (message.text or "")
    assert await control.join(1004, link.invite_link) == "member"
    assert await bot.ban_chat_member(PREMIUM, 1002)
    assert isinstance(await bot.get_chat_member(PREMIUM, 1002), ChatMemberBanned)
    assert await bot.unban_chat_member(PREMIUM, 1002, only_if_banned=True)
    assert isinstance(await bot.get_chat_member(PREMIUM, 1002), ChatMemberLeft)


async def test_errors(bot: Bot, control: SandboxControl) -> None:
    with pytest.raises(Forbidden, match="bot can't initiate conversation"):
        await bot.send_message(1005, "hello")
    with pytest.raises(BadRequest, match="User not found"):
        await bot.get_chat_member(PREMIUM, 424242)
    await control.migrate(VIP, -1009000000002)
    with pytest.raises(ChatMigrated) as migrated:
        await bot.get_chat(VIP)
    assert migrated.value.new_chat_id == -1009000000002


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after(bot: Bot, control: SandboxControl) -> None:
    await control.inject_fault("getChat", 429, retry_after=12)
    with pytest.raises(RetryAfter) as flooded:
        await bot.get_chat(PREMIUM)
    assert flooded.value.retry_after in (12, dtm.timedelta(seconds=12))
