"""The invite's decision tables (issue 9), as unit tests: Telegram answered X, so the service
does Y. The real python-telegram-bot client and botqueue's error mapping run over a mocked
transport (tests/mocked_bot.py); tests/integration/test_telegram_answers.py shows the same
over HTTP against the sandbox. Every error text is Telegram's own."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from botqueue.errors import RetryableError
from botqueue.sandbox import errors as tg
from botqueue.telegram.errors import TelegramPermanentError
from botqueue.telegram.service import TelegramBotService
from tests.factories import invite
from tests.mocked_bot import MockedBot, chat_member, invite_link, message

CHANNEL = -1001000000001
USER = 1004
LINK_FIRST = ["getChatMember", "createChatInviteLink", "sendMessage"]

# The "user not found" family: Telegram answers these for users who may well be in the chat.
UNRESOLVED = [
    pytest.param(tg.USER_NOT_FOUND, id="user-not-found"),
    pytest.param(tg.MEMBER_NOT_FOUND, id="member-not-found"),
    pytest.param(tg.PARTICIPANT_ID_INVALID, id="participant-id-invalid"),
    pytest.param(tg.USER_ID_INVALID, id="user-id-invalid"),
]
# sendMessage answers meaning the user cannot get the bot's message: the link is kept.
UNDELIVERABLE = [
    pytest.param(tg.BOT_BLOCKED, "bot_blocked", id="blocked"),
    pytest.param(tg.BOT_NOT_STARTED, "bot_not_started", id="not-started"),
    pytest.param(tg.USER_DEACTIVATED, "user_deactivated", id="deactivated"),
    pytest.param(tg.USER_NOT_FOUND, "user_not_found", id="user-not-found"),
    pytest.param(tg.CHAT_NOT_FOUND, "chat_not_found", id="chat-not-found"),
    pytest.param(tg.BOT_CANT_SEND_TO_THE_BOT, "recipient_is_bot", id="to-the-bot-2026"),
    pytest.param(tg.BOTS_CANT_SEND_TO_BOTS, "recipient_is_bot", id="to-bots-2024"),
    pytest.param(tg.BOT_CANT_SEND_TO_BOTS, "recipient_is_bot", id="to-bots-old"),
    pytest.param(tg.PEER_ID_INVALID, "peer_id_invalid", id="peer-id-invalid"),
    pytest.param(tg.USER_BANNED_IN_CHANNEL, "user_banned_in_channel", id="banned-in-channel"),
]


def op(sub: str = "sub-1") -> Any:
    """The invite these tables send: USER into CHANNEL."""
    return invite(USER, sub, channel=str(CHANNEL))


def link_and_message(bot: MockedBot) -> str:
    """Queue a created link and a delivered message; return the link."""
    created = invite_link()
    bot.answer("createChatInviteLink", created)
    bot.answer("sendMessage", message(USER))
    return str(created["invite_link"])


# -- getChatMember before an invite ---------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        pytest.param(chat_member(USER, "member"), id="member"),
        pytest.param(chat_member(USER, "administrator"), id="administrator"),
        pytest.param(chat_member(USER, "creator", is_anonymous=False), id="creator"),
        pytest.param(chat_member(USER, "restricted", is_member=True), id="restricted-in"),
    ],
)
async def test_a_user_in_the_channel_gets_no_link(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, member: dict[str, Any]
) -> None:
    mocked_bot.answer("getChatMember", member)
    outcome = await mocked_service.invite_user(op())
    assert (outcome.status, outcome.detail) == ("noop", {"memberStatus": member["status"]})
    assert mocked_bot.methods() == ["getChatMember"]


@pytest.mark.parametrize(
    "status", [pytest.param("left", id="left"), pytest.param("restricted", id="restricted-out")]
)
async def test_a_user_out_of_the_channel_gets_a_single_use_link(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, status: str
) -> None:
    mocked_bot.answer("getChatMember", chat_member(USER, status))
    link = link_and_message(mocked_bot)
    outcome = await mocked_service.invite_user(op())
    assert outcome.status == "succeeded"
    assert outcome.detail["inviteLink"] == link
    assert outcome.detail["inviteLinkName"] == "sub-1"
    assert mocked_bot.methods() == LINK_FIRST  # no unban: nothing to lift
    (created,) = mocked_bot.calls("createChatInviteLink")
    assert (created["chat_id"], created["member_limit"], created["name"]) == (CHANNEL, 1, "sub-1")
    (sent,) = mocked_bot.calls("sendMessage")
    assert sent["chat_id"] == USER and link in sent["text"]


async def test_a_banned_user_is_unbanned_before_the_link(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    mocked_bot.answer("getChatMember", chat_member(USER, "kicked"))
    mocked_bot.answer("unbanChatMember", True)
    link_and_message(mocked_bot)
    outcome = await mocked_service.invite_user(op())
    assert outcome.status == "succeeded"
    assert mocked_bot.methods() == ["getChatMember", "unbanChatMember", *LINK_FIRST[1:]]
    (unban,) = mocked_bot.calls("unbanChatMember")
    assert (unban["user_id"], unban["only_if_banned"]) == (USER, True)


@pytest.mark.parametrize("text", UNRESOLVED)
async def test_an_unresolved_user_may_be_banned_so_the_link_follows_a_safe_unban(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, text: str
) -> None:
    mocked_bot.fail("getChatMember", text)
    mocked_bot.answer("unbanChatMember", True)
    link_and_message(mocked_bot)
    outcome = await mocked_service.invite_user(op())
    assert outcome.status == "succeeded"
    assert mocked_bot.methods() == ["getChatMember", "unbanChatMember", *LINK_FIRST[1:]]
    # only_if_banned: a member's unban would remove them from the channel.
    assert mocked_bot.calls("unbanChatMember")[0]["only_if_banned"] is True


@pytest.mark.parametrize("text", UNRESOLVED)
async def test_a_refused_unban_of_an_unresolved_user_does_not_stop_the_invite(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, text: str
) -> None:
    mocked_bot.fail("getChatMember", text)
    mocked_bot.fail("unbanChatMember", tg.NOT_ENOUGH_RIGHTS_RESTRICT)
    link_and_message(mocked_bot)
    with capture_logs() as logs:
        outcome = await mocked_service.invite_user(op())
    assert outcome.status == "succeeded"
    assert [line["error"] for line in logs if "error" in line] == [tg.NOT_ENOUGH_RIGHTS_RESTRICT]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(tg.CHAT_NOT_FOUND, "chat_not_found", id="chat-not-found"),
        pytest.param(tg.CHAT_ADMIN_REQUIRED, "not_enough_rights", id="admin-required"),
        pytest.param(tg.MEMBER_LIST_INACCESSIBLE, "member_list_inaccessible", id="list"),
        pytest.param(tg.bot_kicked("channel"), "bot_kicked", id="bot-kicked"),
        pytest.param(tg.bot_not_member("channel"), "bot_not_member", id="bot-not-member"),
        pytest.param(tg.CHANNEL_PRIVATE, "channel_private", id="channel-private"),
    ],
)
async def test_a_lookup_refused_for_the_chat_fails_the_invite_before_any_link(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, text: str, reason: str
) -> None:
    mocked_bot.fail("getChatMember", text)
    with pytest.raises(TelegramPermanentError) as caught:
        await mocked_service.invite_user(op())
    assert (caught.value.reason, caught.value.message) == (reason, text)
    assert mocked_bot.methods() == ["getChatMember"]


async def test_a_lookup_that_fails_in_transit_is_retried_before_any_link(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    mocked_bot.fail("getChatMember", "Bad Gateway")
    with pytest.raises(RetryableError):
        await mocked_service.invite_user(op())
    assert mocked_bot.methods() == ["getChatMember"]


# -- sendMessage: undeliverable keeps the link, unconfirmed revokes it -----------------------


@pytest.mark.parametrize(("text", "reason"), UNDELIVERABLE)
async def test_an_undeliverable_message_keeps_the_link(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, text: str, reason: str
) -> None:
    mocked_bot.answer("getChatMember", chat_member(USER, "left"))
    created = invite_link()
    mocked_bot.answer("createChatInviteLink", created)
    mocked_bot.fail("sendMessage", text)
    with pytest.raises(TelegramPermanentError) as caught:
        await mocked_service.invite_user(op())
    assert caught.value.reason == reason
    assert caught.value.message == f"invite link created but not delivered: {text}"
    assert caught.value.detail["inviteLink"] == created["invite_link"]
    assert caught.value.detail["linkValid"] is True
    assert mocked_bot.methods() == LINK_FIRST  # no revocation


@pytest.mark.parametrize(
    ("text", "error"),
    [
        pytest.param("Bad Request: message is too long", TelegramPermanentError, id="refused"),
        pytest.param("Bad Gateway", RetryableError, id="502"),
        pytest.param("Internal Server Error", RetryableError, id="500"),
    ],
)
async def test_an_unconfirmed_message_revokes_the_link(
    mocked_service: TelegramBotService,
    mocked_bot: MockedBot,
    text: str,
    error: type[Exception],
) -> None:
    mocked_bot.answer("getChatMember", chat_member(USER, "left"))
    created = invite_link()
    mocked_bot.answer("createChatInviteLink", created)
    mocked_bot.fail("sendMessage", text)
    mocked_bot.answer("revokeChatInviteLink", {**created, "is_revoked": True})
    with pytest.raises(error) as caught:
        await mocked_service.invite_user(op())
    detail = caught.value.detail  # type: ignore[attr-defined]
    assert (detail["inviteLink"], detail["linkValid"]) == (created["invite_link"], False)
    assert mocked_bot.methods() == [*LINK_FIRST, "revokeChatInviteLink"]
    assert mocked_bot.calls("revokeChatInviteLink")[0]["invite_link"] == created["invite_link"]


# -- revokeChatInviteLink: what its answers leave valid --------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(tg.CHAT_ADMIN_REQUIRED, id="admin-required"),
        pytest.param(tg.NOT_ENOUGH_RIGHTS_INVITE, id="not-enough-rights"),
        pytest.param("Bad Gateway", id="502"),
    ],
)
async def test_a_failed_revocation_says_the_link_stays_valid(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, text: str
) -> None:
    mocked_bot.answer("getChatMember", chat_member(USER, "left"))
    mocked_bot.answer("createChatInviteLink", invite_link())
    mocked_bot.fail("sendMessage", "Bad Gateway")
    mocked_bot.fail("revokeChatInviteLink", text)
    with capture_logs() as logs, pytest.raises(RetryableError) as caught:
        await mocked_service.invite_user(op())
    assert caught.value.detail["linkValid"] is True
    (line,) = [entry for entry in logs if entry.get("linkName") == "sub-1"]
    assert (line["log_level"], line["error"]) == ("warning", text)


async def test_an_undelivered_link_the_chat_no_longer_has_is_not_valid(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    mocked_bot.answer("getChatMember", chat_member(USER, "left"))
    mocked_bot.answer("createChatInviteLink", invite_link())
    mocked_bot.fail("sendMessage", "Bad Gateway")
    mocked_bot.fail("revokeChatInviteLink", tg.INVITE_HASH_EXPIRED)
    with pytest.raises(RetryableError) as caught:
        await mocked_service.invite_user(op())
    assert caught.value.detail["linkValid"] is False


async def invite_twice(service: TelegramBotService, bot: MockedBot) -> str:
    """A delivered invite, then the same user's second one; return the first link. The
    second invite's getChatMember answer is queued; its revocation answer is the test's."""
    bot.answer("getChatMember", chat_member(USER, "left"))
    first = link_and_message(bot)
    await service.invite_user(op())
    bot.sent.clear()
    bot.answer("getChatMember", chat_member(USER, "left"))
    return first


async def test_an_earlier_link_is_revoked_before_the_next_invite(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    first = await invite_twice(mocked_service, mocked_bot)
    mocked_bot.answer("revokeChatInviteLink", invite_link(revoked=True))
    second = link_and_message(mocked_bot)
    outcome = await mocked_service.invite_user(op(sub="sub-2"))
    assert outcome.detail["inviteLink"] == second
    assert mocked_bot.methods() == ["revokeChatInviteLink", *LINK_FIRST]
    assert mocked_bot.calls("revokeChatInviteLink")[0]["invite_link"] == first
    assert await mocked_service.links.held(str(CHANNEL), USER) == [second]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        # The chat no longer has the link (expired, or revoked elsewhere): nothing to keep.
        pytest.param(tg.INVITE_HASH_EXPIRED, False, id="invite-link-expired"),
        # Refused: the link is kept, so that a later operation tries again.
        pytest.param(tg.CHAT_ADMIN_REQUIRED, True, id="admin-required"),
        pytest.param(tg.NOT_ENOUGH_RIGHTS_INVITE, True, id="not-enough-rights"),
    ],
)
async def test_a_refused_revocation_of_an_earlier_link_lets_the_invite_go_on(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, text: str, kept: bool
) -> None:
    first = await invite_twice(mocked_service, mocked_bot)
    mocked_bot.fail("revokeChatInviteLink", text)
    second = link_and_message(mocked_bot)
    with capture_logs() as logs:
        outcome = await mocked_service.invite_user(op(sub="sub-2"))
    assert outcome.detail["inviteLink"] == second
    held = await mocked_service.links.held(str(CHANNEL), USER)
    assert sorted(held) == sorted([first, second] if kept else [second])
    warned = [line for line in logs if line.get("error") == text]
    assert len(warned) == (1 if kept else 0)


async def test_an_earlier_link_whose_revocation_fails_in_transit_stops_the_invite(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    first = await invite_twice(mocked_service, mocked_bot)
    mocked_bot.fail("revokeChatInviteLink", "Bad Gateway")
    with pytest.raises(RetryableError):
        await mocked_service.invite_user(op(sub="sub-2"))
    # Retried before a second link exists beside the first.
    assert mocked_bot.methods() == ["revokeChatInviteLink"]
    assert await mocked_service.links.held(str(CHANNEL), USER) == [first]
