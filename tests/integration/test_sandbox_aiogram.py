"""The sandbox driven by aiogram's Bot, an independent client: it must parse every result and
raise its own exceptions for Telegram's errors."""

from __future__ import annotations

import datetime as dtm
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    ChatFullInfo,
    ChatInviteLink,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    User,
)

from botqueue.sandbox import SandboxControl, SandboxServer

PREMIUM, VIP, NO_BOT, KICKED = -1001000000001, -1001000000002, -1001000000003, -1001000000004
BOT_ID = 123456789


def make_bot(sandbox: SandboxServer, token: str | None = None) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(sandbox.url))
    return Bot(token or sandbox.token, session=session)


@pytest.fixture
async def bot(sandbox: SandboxServer) -> AsyncIterator[Bot]:
    client = make_bot(sandbox)
    try:
        yield client
    finally:
        await client.session.close()


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert isinstance(me, User)
    assert (me.id, me.is_bot, me.username) == (BOT_ID, True, "sandbox_bot")


async def test_get_chat(bot: Bot) -> None:
    chat = await bot.get_chat("@premium_signals")
    assert isinstance(chat, ChatFullInfo)
    assert (chat.id, chat.type, chat.title) == (PREMIUM, "channel", "Premium Signals")
    private = await bot.get_chat(1001)
    assert (private.type, private.first_name) == ("private", "Ann")


async def test_get_chat_member_every_status(bot: Bot) -> None:
    owner = await bot.get_chat_member(PREMIUM, 1)
    admin = await bot.get_chat_member(PREMIUM, BOT_ID)
    member = await bot.get_chat_member(PREMIUM, 1001)
    left = await bot.get_chat_member(PREMIUM, 1004)
    banned = await bot.get_chat_member(PREMIUM, 1009)
    assert isinstance(owner, ChatMemberOwner)
    assert isinstance(admin, ChatMemberAdministrator)
    assert admin.can_invite_users and admin.can_restrict_members and admin.user.is_bot
    assert isinstance(member, ChatMemberMember) and member.user.first_name == "Ann"
    assert isinstance(left, ChatMemberLeft)
    assert isinstance(banned, ChatMemberBanned)


async def test_administrators(bot: Bot) -> None:
    admins = await bot.get_chat_administrators(PREMIUM)
    assert [type(a) for a in admins] == [
        ChatMemberOwner,
        ChatMemberAdministrator,
        ChatMemberAdministrator,
    ]


async def test_invite_link_and_join(bot: Bot, control: SandboxControl) -> None:
    expires = dtm.datetime.now(dtm.UTC) + dtm.timedelta(hours=1)
    link = await bot.create_chat_invite_link(
        PREMIUM, name="sub-42", expire_date=expires, member_limit=1
    )
    assert isinstance(link, ChatInviteLink)
    assert link.invite_link.startswith("https://t.me/+") and link.member_limit == 1
    assert link.expire_date is not None
    assert abs(link.expire_date.timestamp() - expires.timestamp()) < 1
    assert link.creator.id == BOT_ID and link.name == "sub-42"
    assert await control.join(1004, link.invite_link) == "member"
    assert isinstance(await bot.get_chat_member(PREMIUM, 1004), ChatMemberMember)
    revoked = await bot.revoke_chat_invite_link(PREMIUM, link.invite_link)
    assert revoked.is_revoked


async def test_join_request_approval(bot: Bot, control: SandboxControl) -> None:
    link = await bot.create_chat_invite_link(PREMIUM, creates_join_request=True)
    assert await control.join(1008, link.invite_link) == "pending"
    assert await bot.approve_chat_join_request(PREMIUM, 1008) is True
    await control.join(1010, link.invite_link)
    assert await bot.decline_chat_join_request(PREMIUM, 1010) is True
    with pytest.raises(TelegramBadRequest, match="HIDE_REQUESTER_MISSING"):
        await bot.decline_chat_join_request(PREMIUM, 1010)


async def test_ban_then_unban(bot: Bot, control: SandboxControl) -> None:
    assert await bot.ban_chat_member(PREMIUM, 1002) is True
    assert isinstance(await bot.get_chat_member(PREMIUM, 1002), ChatMemberBanned)
    assert await bot.unban_chat_member(PREMIUM, 1002, only_if_banned=True) is True
    assert isinstance(await bot.get_chat_member(PREMIUM, 1002), ChatMemberLeft)
    assert 1002 not in (await control.members(PREMIUM))["members"]


async def test_send_message(bot: Bot, control: SandboxControl) -> None:
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Join", url="https://t.me/+abc")]]
    )
    message = await bot.send_message(1001, "Your link", reply_markup=markup)
    assert isinstance(message, Message)
    assert message.text == "Your link" and message.chat.id == 1001
    assert message.from_user is not None and message.from_user.id == BOT_ID
    assert message.reply_markup is not None
    assert message.reply_markup.model_dump() == markup.model_dump()
    post = await bot.send_message(PREMIUM, "Signal")
    assert post.sender_chat is not None and post.sender_chat.id == PREMIUM
    assert [m["text"] for m in await control.messages()] == ["Your link", "Signal"]


async def test_bad_requests(bot: Bot, control: SandboxControl) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat(-1009999)
    with pytest.raises(TelegramBadRequest, match="user not found"):
        await bot.get_chat_member(PREMIUM, 424242)
    with pytest.raises(TelegramBadRequest, match="user is an administrator of the chat"):
        await bot.ban_chat_member(PREMIUM, 2)
    with pytest.raises(TelegramBadRequest, match="can't remove chat owner"):
        await bot.ban_chat_member(PREMIUM, 1)
    with pytest.raises(TelegramBadRequest, match="not enough rights to restrict"):
        await bot.ban_chat_member(VIP, 1001)
    await control.set_bot_rights(PREMIUM, {"can_restrict_members": True})
    with pytest.raises(TelegramBadRequest, match="not enough rights to manage chat invite"):
        await bot.create_chat_invite_link(PREMIUM)


@pytest.mark.parametrize(
    ("chat_id", "text"),
    [
        (1005, "bot can't initiate conversation with a user"),
        (1006, "bot was blocked by the user"),
        (1007, "user is deactivated"),
    ],
)
async def test_forbidden_messages(bot: Bot, chat_id: int, text: str) -> None:
    with pytest.raises(TelegramForbiddenError, match=text):
        await bot.send_message(chat_id, "hello")


async def test_forbidden_chats(bot: Bot) -> None:
    with pytest.raises(TelegramForbiddenError, match="bot is not a member of the channel chat"):
        await bot.get_chat_member(NO_BOT, BOT_ID)
    with pytest.raises(TelegramForbiddenError, match="bot was kicked from the channel chat"):
        await bot.get_chat_member(KICKED, BOT_ID)


async def test_retry_after_from_flood_control(bot: Bot, control: SandboxControl) -> None:
    await control.set_flood(2)
    await bot.get_me()
    await bot.get_me()
    with pytest.raises(TelegramRetryAfter) as flooded:
        await bot.get_me()
    assert flooded.value.retry_after == 1
    await control.set_flood(None)
    await control.inject_fault("banChatMember", 429, retry_after=30)
    with pytest.raises(TelegramRetryAfter) as injected:
        await bot.ban_chat_member(PREMIUM, 1001)
    assert injected.value.retry_after == 30


async def test_migrate_to_chat(bot: Bot, control: SandboxControl) -> None:
    await control.migrate(VIP, -1009000000002)
    with pytest.raises(TelegramMigrateToChat) as migrated:
        await bot.get_chat_member(VIP, 1001)
    assert migrated.value.migrate_to_chat_id == -1009000000002
    assert isinstance(await bot.get_chat_member(-1009000000002, 1001), ChatMemberMember)


async def test_unknown_token(sandbox: SandboxServer) -> None:
    stranger = make_bot(sandbox, "555555555:CCF-not-in-this-world-0000000000000")
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await stranger.get_me()
    finally:
        await stranger.session.close()
