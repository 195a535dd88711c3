"""TelegramBotService over real HTTP against the Bot API sandbox, case by case."""

from __future__ import annotations

import pytest

from botqueue.errors import PermanentError, RetryableError
from botqueue.operations import VerifyPermissions
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.errors import BotUnauthorizedError, TelegramPermanentError
from botqueue.telegram.membership import invite_link_name
from botqueue.telegram.service import TelegramBotService
from tests.factories import invite, remove

PREMIUM = "-1001000000001"  # bot may invite and restrict; Ann 1001, Ben 1002, Cara 1003 members
VIP = "-1001000000002"  # bot may invite but not restrict; Ann is a member
NO_BOT = "-1001000000003"
KICKED = "-1001000000004"


async def calls(control: SandboxControl, method: str) -> int:
    return int((await control.requests())["methods"].get(method, 0))


# -- invite ---------------------------------------------------------------------------------


@pytest.mark.parametrize("user", [1001, 2, 1], ids=["member", "administrator", "creator"])
async def test_invite_someone_already_in_is_a_noop(
    service: TelegramBotService, control: SandboxControl, user: int
) -> None:
    outcome = await service.invite_user(invite(user))
    assert outcome.status == "noop"
    assert await calls(control, "createChatInviteLink") == 0
    assert await control.messages(chat_id=user) == []


async def test_invite_sends_a_single_use_link_that_admits_the_user(
    service: TelegramBotService, control: SandboxControl
) -> None:
    before = (await control.requests())["total"]
    outcome = await service.invite_user(invite(1004, sub="sub-dan-2026"))
    assert outcome.status == "succeeded"
    link = outcome.detail["inviteLink"]
    assert link.startswith("https://t.me/+")
    # member check, link, message: three calls
    assert (await control.requests())["total"] - before == 3
    (message,) = await control.messages(chat_id=1004)
    assert link in message["text"]
    assert await control.join(1004, link) == "member"
    assert 1004 in (await control.members(PREMIUM))["members"]
    with pytest.raises(Exception, match=r"(?i)expired|used|limit|invalid"):
        await control.join(1008, link)  # single use


async def test_invite_link_name_is_derived_and_short() -> None:
    assert invite_link_name("sub-1") == "sub-1"
    long = invite_link_name("subscription-" + "x" * 60)
    assert len(long) <= 32 and long.startswith("subscription-")
    assert invite_link_name("subscription-" + "x" * 60) == long


async def test_invite_unbans_a_banned_user_first(
    service: TelegramBotService, control: SandboxControl
) -> None:
    assert 1009 in (await control.members(PREMIUM))["banned"]
    outcome = await service.invite_user(invite(1009))
    assert outcome.status == "succeeded"
    assert 1009 not in (await control.members(PREMIUM))["banned"]
    assert await control.join(1009, outcome.detail["inviteLink"]) == "member"


@pytest.mark.parametrize(
    ("user", "reason"),
    [(1005, "bot_not_started"), (1006, "bot_blocked"), (1007, "user_deactivated")],
)
async def test_invite_undeliverable_is_permanent_and_keeps_the_link(
    service: TelegramBotService, user: int, reason: str
) -> None:
    with pytest.raises(TelegramPermanentError) as caught:
        await service.invite_user(invite(user))
    assert caught.value.reason == reason
    assert caught.value.detail["inviteLink"].startswith("https://t.me/+")


async def test_invite_without_rights_is_permanent(
    service: TelegramBotService, control: SandboxControl
) -> None:
    await control.set_bot_rights(PREMIUM, {"can_manage_chat": True})
    with pytest.raises(TelegramPermanentError) as caught:
        await service.invite_user(invite(1004))
    assert caught.value.reason in ("not_enough_rights", "bot_not_member")


# -- remove ---------------------------------------------------------------------------------


async def test_remove_is_a_lookup_and_one_plain_unban(
    service: TelegramBotService, control: SandboxControl
) -> None:
    outcome = await service.remove_user(remove(1002))
    assert outcome.status == "succeeded"
    roster = await control.members(PREMIUM)
    assert 1002 not in roster["members"] and 1002 not in roster["banned"]
    # Issue 17: two calls, no ban (unbanChatMember without only_if_banned removes a member).
    methods = (await control.requests())["methods"]
    assert methods == {"getMe": 1, "getChatMember": 1, "unbanChatMember": 1}
    # Out, but free to come back with a new link after resubscribing.
    again = await service.invite_user(invite(1002, sub="sub-2"))
    assert again.status == "succeeded"


@pytest.mark.parametrize("user", [1004, 1009], ids=["never-joined", "banned"])
async def test_remove_someone_not_in_is_a_noop(
    service: TelegramBotService, control: SandboxControl, user: int
) -> None:
    outcome = await service.remove_user(remove(user))
    assert outcome.status == "noop"
    assert await calls(control, "banChatMember") == 0


async def test_remove_someone_telegram_does_not_know_is_not_a_noop(
    service: TelegramBotService, control: SandboxControl
) -> None:
    # "user not found" is no proof that the user is out: the ban is tried, and its refusal
    # is a permanent failure, never a silent success.
    with pytest.raises(TelegramPermanentError) as caught:
        await service.remove_user(remove(999_999))
    assert caught.value.reason == "user_not_found"
    assert await calls(control, "banChatMember") == 1


@pytest.mark.parametrize(("user", "reason"), [(2, "user_is_admin"), (1, "user_is_owner")])
async def test_remove_admin_or_creator_is_permanent(
    service: TelegramBotService, user: int, reason: str
) -> None:
    with pytest.raises(PermanentError) as caught:
        await service.remove_user(remove(user))
    assert caught.value.detail["reason"] == reason


async def test_remove_without_restrict_rights_is_permanent(service: TelegramBotService) -> None:
    with pytest.raises(TelegramPermanentError) as caught:
        await service.remove_user(remove(1001, channel=VIP))
    assert caught.value.reason == "not_enough_rights"


# -- verify ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "verified", "missing", "reason"),
    [
        (PREMIUM, True, [], None),
        (VIP, False, ["can_restrict_members"], "missing_rights"),
        (NO_BOT, False, ["can_invite_users", "can_restrict_members"], "bot_not_member"),
        (KICKED, False, ["can_invite_users", "can_restrict_members"], "bot_kicked"),
        ("-1009999999999", False, ["can_invite_users", "can_restrict_members"], "chat_not_found"),
    ],
)
async def test_verify_reports_rights(
    service: TelegramBotService,
    channel: str,
    verified: bool,
    missing: list[str],
    reason: str | None,
) -> None:
    op = VerifyPermissions(channel_id=channel, listing_id="listing-1")
    outcome = await service.verify_permissions(op)
    assert outcome.status == "succeeded"
    assert outcome.detail["verified"] is verified
    assert outcome.detail["missingRights"] == missing
    assert outcome.detail.get("reason") == reason
    assert outcome.detail["listingId"] == "listing-1"


async def test_verify_retries_only_transport_failures(
    service: TelegramBotService, control: SandboxControl
) -> None:
    await control.inject_fault("getChatMember", 502, "Bad Gateway")
    with pytest.raises(RetryableError):
        await service.verify_permissions(VerifyPermissions(channel_id=PREMIUM))
    outcome = await service.verify_permissions(VerifyPermissions(channel_id=PREMIUM))
    assert outcome.detail["verified"] is True


async def test_verify_takes_one_call(service: TelegramBotService, control: SandboxControl) -> None:
    before = (await control.requests())["total"]
    await service.verify_permissions(VerifyPermissions(channel_id=PREMIUM))
    assert (await control.requests())["total"] - before == 1  # getMe is cached


# -- migration, tokens, timeouts ------------------------------------------------------------


async def test_migrated_chat_is_retried_at_its_new_id(
    service: TelegramBotService, control: SandboxControl
) -> None:
    await control.migrate(VIP, -1001000000099)
    outcome = await service.invite_user(invite(1004, channel=VIP))
    assert outcome.status == "succeeded"
    assert outcome.detail["migratedToChatId"] == -1001000000099


async def test_invalid_token_is_fatal(sandbox: SandboxServer) -> None:
    wrong = "987654321:AAF-not-a-real-token-000000000000000"
    svc = TelegramBotService(wrong, api_url=sandbox.url)
    with pytest.raises(BotUnauthorizedError):
        await svc.start()
    await svc.aclose()


async def test_a_call_that_never_answers_times_out_and_is_retryable(
    sandbox: SandboxServer, control: SandboxControl
) -> None:
    svc = TelegramBotService(sandbox.token, api_url=sandbox.url, request_timeout=0.5)
    await svc.start()
    await control.hang("getChatMember", 1)
    with pytest.raises(RetryableError) as caught:
        await svc.verify_permissions(VerifyPermissions(channel_id=PREMIUM))
    assert caught.value.detail["reason"] == "timeout"
    outcome = await svc.verify_permissions(VerifyPermissions(channel_id=PREMIUM))
    assert outcome.detail["verified"] is True
    await svc.aclose()


@pytest.mark.parametrize("code", [500, 502, 503])
async def test_server_errors_are_retryable(
    service: TelegramBotService, control: SandboxControl, code: int
) -> None:
    await control.inject_fault("getChatMember", code, "Internal Server Error")
    with pytest.raises(RetryableError):
        await service.remove_user(remove(1001))
