"""The removal path as a decision table: what getChatMember answers, which calls follow.
Prepared Bot API answers are fed to python-telegram-bot's real request layer through
``httpx.MockTransport`` (tests/mocked_bot.py, as aiogram's MockedBot does), so every branch
of "Telegram answered X, therefore botqueue calls Y" runs without a server; the sandbox tests
prove the same over HTTP (tests/integration/test_telegram_service.py, test_telegram_answers.py).

Issue 17: a member (or a restricted user, in the chat or not) is taken out by one plain
unbanChatMember, never a ban; "left" and "kicked" are no-ops; an administrator or the owner is
refused; an ambiguous lookup (issue 9) leads to the ban and nothing else.
"""

from __future__ import annotations

from typing import Any

import pytest

from botqueue.errors import PermanentError, RetryableError
from botqueue.operations import RemoveUser
from botqueue.sandbox import errors as tg
from botqueue.telegram.flood import Budget, FakeClock, MemoryStore
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.membership import KICK_SERVER_HOLD
from botqueue.telegram.service import TelegramBotService
from tests import factories
from tests.mocked_bot import Fail, MockedBot, chat_member, invite_link

CHANNEL = -1001000000001
USER = 1002


def member(status: str, **fields: Any) -> dict[str, Any]:
    """USER's ChatMember of ``status``."""
    return chat_member(USER, status, **fields)


def remove() -> RemoveUser:
    return factories.remove(USER, "s", channel=str(CHANNEL))


AMBIGUOUS = [tg.USER_NOT_FOUND, tg.MEMBER_NOT_FOUND, tg.PARTICIPANT_ID_INVALID, tg.USER_ID_INVALID]

# getChatMember's answer -> the calls that follow it, and the outcome's status and detail.
DECISIONS = [
    pytest.param(member("member"), ["unbanChatMember"], "succeeded", "member", id="member"),
    pytest.param(
        member("restricted", is_member=True),
        ["unbanChatMember"],
        "succeeded",
        "restricted",
        id="restricted-in",
    ),
    pytest.param(
        member("restricted", is_member=False),
        ["unbanChatMember"],
        "succeeded",
        "restricted",
        id="restricted-out",
    ),
    pytest.param(member("left"), [], "noop", "left", id="left"),
    pytest.param(member("kicked"), [], "noop", "kicked", id="kicked"),
    *[
        pytest.param(Fail(text), ["banChatMember"], "succeeded", "unknown", id=text[13:])
        for text in AMBIGUOUS
    ],
]


@pytest.mark.parametrize(("lookup", "follow", "status", "member_status"), DECISIONS)
async def test_what_follows_each_lookup(
    mocked_service: TelegramBotService,
    mocked_bot: MockedBot,
    lookup: dict[str, Any] | Fail,
    follow: list[str],
    status: str,
    member_status: str,
) -> None:
    mocked_bot.prepare("getChatMember", lookup)
    for method in follow:
        mocked_bot.answer(method, True)
    outcome = await mocked_service.remove_user(remove())
    assert mocked_bot.methods() == ["getChatMember", *follow]
    assert outcome.status == status
    assert outcome.detail["memberStatus"] == member_status
    for sent in [sent for sent in mocked_bot.sent if sent.method != "getMe"][1:]:
        method, params = sent.method, sent.params
        assert params["chat_id"] == CHANNEL and params["user_id"] == USER
        # A plain unban: only_if_banned would leave a member in the chat.
        assert "only_if_banned" not in params
        # A ban follows only an ambiguous lookup, and it is never lifted (an admin's ban may
        # be what the lookup could not show).
        assert method == ("banChatMember" if member_status == "unknown" else "unbanChatMember")


@pytest.mark.parametrize(
    ("status", "reason"),
    [("administrator", "user_is_admin"), ("creator", "user_is_owner")],
)
async def test_an_admin_or_the_owner_is_refused_without_a_call(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, status: str, reason: str
) -> None:
    mocked_bot.answer("getChatMember", member(status))
    with pytest.raises(PermanentError) as caught:
        await mocked_service.remove_user(remove())
    assert caught.value.detail["reason"] == reason
    assert mocked_bot.methods() == ["getChatMember"]


@pytest.mark.parametrize("text", AMBIGUOUS)
async def test_an_ambiguous_lookup_and_a_refused_ban_is_not_done(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, text: str
) -> None:
    mocked_bot.fail("getChatMember", text)
    mocked_bot.fail("banChatMember", tg.USER_NOT_FOUND)
    with pytest.raises(PermanentError) as caught:
        await mocked_service.remove_user(remove())
    assert caught.value.detail["memberLookupError"] == text
    assert mocked_bot.methods() == ["getChatMember", "banChatMember"]


@pytest.mark.parametrize(
    ("answers", "calls", "raised"),
    [
        pytest.param(
            {"getChatMember": [Fail("Bad Gateway")]},
            ["getChatMember"],
            RetryableError,
            id="lookup-502",
        ),
        pytest.param(
            {"getChatMember": [member("member")], "unbanChatMember": [Fail("Bad Gateway")]},
            ["getChatMember", "unbanChatMember"],
            RetryableError,
            id="unban-502",
        ),
        pytest.param(
            {
                "getChatMember": [member("member")],
                # Promoted between the lookup and the unban: Telegram's USER_ADMIN_INVALID.
                "unbanChatMember": [Fail(tg.USER_IS_ADMIN)],
            },
            ["getChatMember", "unbanChatMember"],
            PermanentError,
            id="promoted-meanwhile",
        ),
        pytest.param(
            {
                "getChatMember": [member("member")],
                "unbanChatMember": [Fail(tg.NOT_ENOUGH_RIGHTS_RESTRICT)],
            },
            ["getChatMember", "unbanChatMember"],
            PermanentError,
            id="no-restrict-right",
        ),
    ],
)
async def test_a_failed_call_stops_the_removal(
    mocked_service: TelegramBotService,
    mocked_bot: MockedBot,
    answers: dict[str, list[Any]],
    calls: list[str],
    raised: type[Exception],
) -> None:
    for method, queued in answers.items():
        mocked_bot.prepare(method, *queued)
    with pytest.raises(raised):
        await mocked_service.remove_user(remove())
    assert mocked_bot.methods() == calls


async def test_a_retry_after_an_unban_answered_502_finds_the_user_out(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    # The 502 may have come after Telegram did the work: the retry's lookup says "left", and
    # the removal is done in one more call.
    mocked_bot.prepare("getChatMember", member("member"), member("left"))
    mocked_bot.fail("unbanChatMember", "Bad Gateway")
    with pytest.raises(RetryableError):
        await mocked_service.remove_user(remove())
    outcome = await mocked_service.remove_user(remove())
    assert outcome.status == "noop"
    assert mocked_bot.methods() == ["getChatMember", "unbanChatMember", "getChatMember"]


async def test_held_links_are_revoked_before_the_lookup(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    # A link left valid would let the removed user back in: the ledger's links go first.
    url = "https://t.me/+held"
    await mocked_service.links.record(str(CHANNEL), USER, url, 2_000_000_000.0)
    mocked_bot.answer("revokeChatInviteLink", invite_link(revoked=True) | {"invite_link": url})
    mocked_bot.answer("getChatMember", member("member"))
    mocked_bot.answer("unbanChatMember", True)
    outcome = await mocked_service.remove_user(remove())
    assert outcome.status == "succeeded"
    assert mocked_bot.methods() == ["revokeChatInviteLink", "getChatMember", "unbanChatMember"]
    assert mocked_bot.calls("revokeChatInviteLink")[0]["invite_link"] == url
    assert await mocked_service.links.held(str(CHANNEL), USER) == []


@pytest.mark.parametrize(
    ("slow", "hinted"),
    [
        pytest.param({"unbanChatMember": 1.0}, True, id="unban-held-1s"),
        pytest.param({}, False, id="unban-at-once"),  # the user had left meanwhile
        pytest.param({"getChatMember": 1.0}, False, id="lookup-1s-not-declared"),
    ],
)
async def test_the_unban_of_a_member_declares_tdlibs_second_to_the_flood_windows(
    slow: dict[str, float], hinted: bool
) -> None:
    # A fake clock under the token's budget and the chat's window; the mocked server answers
    # after ``slow`` seconds of it. Only a plain unban answered a second or more after its send
    # cools its slots down from a second before its answer; anything else from the answer.
    clock = FakeClock()
    mocked = MockedBot(clock=clock)
    mocked.slow.update(slow)
    mocked.answer("getChatMember", member("member"))
    mocked.answer("unbanChatMember", True)
    budget = Budget(None, 1000, clock=clock)
    limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000), budget=budget)
    service = TelegramBotService(mocked.token, bot=mocked.bot, limiter=limiter)
    await service.start()
    try:
        assert (await service.remove_user(remove())).status == "succeeded"
    finally:
        await service.aclose()
    assert mocked.unprepared == []
    assert KICK_SERVER_HOLD == 1.0
    answered = mocked.answered_at["unbanChatMember"]
    expected = answered - KICK_SERVER_HOLD if hinted else answered
    chat_window = limiter._window("channel", str(CHANNEL))
    for window in (budget, chat_window):
        assert isinstance(window.store, MemoryStore)
        # The unban was the last call: the latest cool-down start is its own.
        assert max(window.store.state.done) == pytest.approx(expected)
