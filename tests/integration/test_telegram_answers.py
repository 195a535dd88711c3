"""Telegram as it really answers (issue 9): ambiguous member lookups never skip a removal, an
invite leaves at most one valid link, a verification answers for a chat the bot lost, and
every text is Telegram's own. Real HTTP against the sandbox, through python-telegram-bot."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from botqueue.errors import RetryableError
from botqueue.operations import VerifyPermissions
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.errors import TelegramPermanentError
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService
from tests.factories import invite, remove

PREMIUM = "-1001000000001"  # the bot may invite and restrict; Ben (1002) is a member
DAN = 1004  # started the bot, never joined PREMIUM
BEN = 1002  # a member of PREMIUM

# Answers Telegram gives to getChatMember for users who may well be in the chat.
AMBIGUOUS = [
    pytest.param(400, "Bad Request: user not found", "user_not_found", id="user-not-found"),
    pytest.param(400, "Bad Request: member not found", "member_not_found", id="member-not-found"),
    pytest.param(
        400, "Bad Request: PARTICIPANT_ID_INVALID", "participant_id_invalid", id="participant"
    ),
    pytest.param(400, "Bad Request: USER_ID_INVALID", "user_id_invalid", id="user-id-invalid"),
]


async def calls(control: SandboxControl, method: str) -> int:
    return int((await control.requests())["methods"].get(method, 0))


async def assert_revoked(control: SandboxControl, link: str) -> None:
    with pytest.raises(Exception, match="revoked"):
        await control.join(DAN, link)


# -- removal: done only when Telegram confirms it -------------------------------------------


@pytest.mark.parametrize(("code", "text", "reason"), AMBIGUOUS)
async def test_an_ambiguous_lookup_is_followed_by_the_ban(
    service: TelegramBotService, control: SandboxControl, code: int, text: str, reason: str
) -> None:
    await control.inject_fault("getChatMember", code, text)
    outcome = await service.remove_user(remove(BEN))
    assert outcome.status == "succeeded"
    assert outcome.detail["memberStatus"] == "unknown"
    assert outcome.detail["memberLookupError"] == text
    roster = await control.members(PREMIUM)
    assert 1002 not in roster["members"]
    # No status, so no unban: it could lift a ban the channel's admins had set.
    assert 1002 in roster["banned"]
    assert await calls(control, "unbanChatMember") == 0
    # The subscriber can still come back: an invite clears the ban first.
    again = await service.invite_user(invite(1002, sub="sub-2"))
    assert await control.join(1002, again.detail["inviteLink"]) == "member"


@pytest.mark.parametrize(("code", "text", "reason"), AMBIGUOUS)
async def test_a_refused_ban_after_an_ambiguous_lookup_is_a_permanent_failure(
    service: TelegramBotService, control: SandboxControl, code: int, text: str, reason: str
) -> None:
    await control.inject_fault("getChatMember", code, text)
    await control.inject_fault("banChatMember", code, text)
    with pytest.raises(TelegramPermanentError) as caught:
        await service.remove_user(remove(BEN))
    assert caught.value.reason == reason
    assert text in caught.value.message  # Telegram's words, case and all
    assert caught.value.detail["memberLookupError"] == text
    assert 1002 in (await control.members(PREMIUM))["members"]


async def test_a_member_telegram_will_not_describe_is_never_taken_as_out(
    service: TelegramBotService, control: SandboxControl
) -> None:
    # Telegram's own behaviour, not an injected fault: for a user the bot's server does not
    # know, getChatMember and banChatMember answer "user not found" though the user is in.
    await control.update_user(1002, known_to_bot=False)
    with pytest.raises(TelegramPermanentError) as caught:
        await service.remove_user(remove(BEN))
    assert caught.value.reason == "user_not_found"
    assert caught.value.detail["memberLookupError"] == "Bad Request: user not found"
    assert 1002 in (await control.members(PREMIUM))["members"]  # not done, and it says so
    assert await calls(control, "banChatMember") == 1


async def test_a_user_banned_by_the_admins_stays_banned(
    service: TelegramBotService, control: SandboxControl
) -> None:
    assert 1009 in (await control.members(PREMIUM))["banned"]
    outcome = await service.remove_user(remove(1009))
    assert outcome.status == "noop"
    assert 1009 in (await control.members(PREMIUM))["banned"]
    assert await calls(control, "unbanChatMember") == 0


async def test_a_restricted_member_is_removed(
    service: TelegramBotService, control: SandboxControl
) -> None:
    quiet = -1002000000001
    await control.add_channel(
        {
            "id": quiet,
            "type": "supergroup",
            "title": "Quiet",
            "bot_rights": {"can_restrict_members": True, "can_invite_users": True},
            "restricted": [DAN],
        }
    )
    op = remove(DAN, "s", channel=str(quiet))
    outcome = await service.remove_user(op)
    assert outcome.status == "succeeded"
    roster = await control.members(quiet)
    assert DAN not in roster["restricted"] and DAN not in roster["banned"]


@pytest.mark.parametrize("role", ["members", "restricted", "restricted_out"])
async def test_a_removal_is_one_plain_unban_for_anyone_in_or_restricted(
    service: TelegramBotService, control: SandboxControl, role: str
) -> None:
    quiet = -1002000000002
    rights = {"can_restrict_members": True, "can_invite_users": True}
    await control.add_channel(
        {"id": quiet, "type": "supergroup", "title": "Quiet", "bot_rights": rights, role: [DAN]}
    )
    op = remove(DAN, "s", channel=str(quiet))
    outcome = await service.remove_user(op)
    assert outcome.status == "succeeded"
    methods = (await control.requests())["methods"]
    assert methods == {"getMe": 1, "getChatMember": 1, "unbanChatMember": 1}
    roster = await control.members(quiet)
    assert not any(DAN in people for people in roster.values() if isinstance(people, list))
    # Free to come back, unrestricted.
    link = await service.invite_user(invite(DAN, "s2", channel=str(quiet), order="o"))
    assert await control.join(DAN, link.detail["inviteLink"]) == "member"


# -- invite: at most one valid link ---------------------------------------------------------


async def test_a_502_on_the_message_revokes_the_link_before_the_retry(
    service: TelegramBotService, control: SandboxControl
) -> None:
    await control.inject_fault("sendMessage", 502, "Bad Gateway")
    with pytest.raises(RetryableError) as caught:
        await service.invite_user(invite())
    first = caught.value.detail["inviteLink"]
    assert caught.value.detail["linkValid"] is False
    assert caught.value.detail["inviteLinkName"] == "sub-1"
    await assert_revoked(control, first)
    outcome = await service.invite_user(invite())  # the retry
    assert outcome.detail["inviteLink"] != first
    assert await control.join(DAN, outcome.detail["inviteLink"]) == "member"
    assert await calls(control, "revokeChatInviteLink") == 1


async def test_a_timed_out_message_revokes_the_link(
    service: TelegramBotService, control: SandboxControl
) -> None:
    await control.hang("sendMessage", 1)
    with pytest.raises(RetryableError) as caught:
        await service.invite_user(invite())
    assert caught.value.detail["reason"] == "timeout"
    assert caught.value.detail["linkValid"] is False
    await assert_revoked(control, caught.value.detail["inviteLink"])


async def test_a_long_flood_pause_on_the_message_still_revokes_the_link(
    sandbox: SandboxServer, control: SandboxControl
) -> None:
    # The 429 is longer than the hold, so the message goes back to the queue; the revocation
    # waits the pause out first, since a retry would otherwise leave two valid links.
    limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000, max_hold=0.2))
    svc = TelegramBotService(sandbox.token, api_url=sandbox.url, limiter=limiter)
    await svc.start()
    try:
        await control.inject_fault("sendMessage", 429, retry_after=2)
        with pytest.raises(RetryableError) as caught:
            await svc.invite_user(invite())
        assert caught.value.detail["reason"] == "flood"
        assert caught.value.detail["linkValid"] is False
        await assert_revoked(control, caught.value.detail["inviteLink"])
    finally:
        await svc.aclose()


async def test_a_failed_revocation_is_logged_with_the_link_name_and_the_retry_goes_on(
    service: TelegramBotService, control: SandboxControl
) -> None:
    await control.inject_fault("sendMessage", 502, "Bad Gateway")
    await control.inject_fault("revokeChatInviteLink", 400, "Bad Request: CHAT_ADMIN_REQUIRED")
    with capture_logs() as logs, pytest.raises(RetryableError) as caught:
        await service.invite_user(invite())
    assert caught.value.detail["linkValid"] is True
    (line,) = [entry for entry in logs if entry.get("linkName") == "sub-1"]
    assert line["log_level"] == "warning"
    assert line["error"] == "Bad Request: CHAT_ADMIN_REQUIRED"


@pytest.mark.parametrize(
    ("code", "text", "reason"),
    [
        (403, "Forbidden: the bot can't send messages to the bot", "recipient_is_bot"),
        (403, "Forbidden: bot can't send messages to bots", "recipient_is_bot"),
        (400, "Bad Request: PEER_ID_INVALID", "peer_id_invalid"),
        (400, "Bad Request: USER_BANNED_IN_CHANNEL", "user_banned_in_channel"),
    ],
)
async def test_undeliverable_answers_keep_the_link(
    service: TelegramBotService, control: SandboxControl, code: int, text: str, reason: str
) -> None:
    await control.inject_fault("sendMessage", code, text)
    with pytest.raises(TelegramPermanentError) as caught:
        await service.invite_user(invite())
    assert caught.value.reason == reason
    assert text in caught.value.message
    assert caught.value.detail["linkValid"] is True
    assert await control.join(DAN, caught.value.detail["inviteLink"]) == "member"
    assert await calls(control, "revokeChatInviteLink") == 0


async def test_another_permanent_refusal_of_the_message_revokes_the_link(
    service: TelegramBotService, control: SandboxControl
) -> None:
    await control.inject_fault("sendMessage", 400, "Bad Request: message is too long")
    with pytest.raises(TelegramPermanentError) as caught:
        await service.invite_user(invite())
    assert caught.value.detail["linkValid"] is False
    await assert_revoked(control, caught.value.detail["inviteLink"])


# -- verify: answers instead of dead letters ------------------------------------------------


@pytest.mark.parametrize(
    ("code", "text", "reason"),
    [
        (400, "Bad Request: CHANNEL_PRIVATE", "channel_private"),
        (400, "Bad Request: group is deactivated", "group_deactivated"),
        (403, "Forbidden: the group chat was deleted", "group_deleted"),
    ],
)
async def test_verify_answers_for_a_chat_the_bot_lost(
    service: TelegramBotService, control: SandboxControl, code: int, text: str, reason: str
) -> None:
    await control.inject_fault("getChatMember", code, text)
    outcome = await service.verify_permissions(VerifyPermissions(channel_id=PREMIUM))
    assert outcome.status == "succeeded"
    assert outcome.detail["verified"] is False
    assert outcome.detail["reason"] == reason
    assert outcome.detail["description"] == text


# -- Telegram's words, verbatim -------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Bad Request: CHAT_ADMIN_REQUIRED",
        "Bad Request: member list is inaccessible",
        "Bad Request: not enough rights to manage chat invite link",
    ],
)
async def test_error_texts_are_telegrams_own(
    service: TelegramBotService, control: SandboxControl, text: str
) -> None:
    await control.inject_fault("createChatInviteLink", 400, text)
    with pytest.raises(TelegramPermanentError) as caught:
        await service.invite_user(invite())
    assert caught.value.message == text
