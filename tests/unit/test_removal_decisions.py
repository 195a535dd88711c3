"""The removal path as a decision table: what getChatMember answers, which calls follow.

Prepared Bot API answers are fed to python-telegram-bot's real request layer through
``httpx.MockTransport`` (as aiogram's MockedBot does), so every branch of "Telegram answered
X, therefore botqueue calls Y" runs without a server; the sandbox tests prove the same over
HTTP (tests/integration/test_telegram_service.py, test_telegram_answers.py).

Issue 17: a member (or a restricted user, in the chat or not) is taken out by one plain
unbanChatMember, never a ban; "left" and "kicked" are no-ops; an administrator or the owner is
refused; an ambiguous lookup (issue 9) leads to the ban and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from telegram import Bot

from botqueue.errors import PermanentError, RetryableError
from botqueue.operations import RemoveUser
from botqueue.telegram.flood import Budget, FakeClock, MemoryStore
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.membership import KICK_SERVER_HOLD
from botqueue.telegram.request import AnswerRecordingRequest
from botqueue.telegram.service import TelegramBotService

TOKEN = "123456789:unit-test-token-for-the-decision-table"
CHANNEL = -1001000000001
USER = 1002
BOT = {"id": 123456789, "is_bot": True, "first_name": "Bot", "username": "unit_bot"}
PERSON = {"id": USER, "is_bot": False, "first_name": "Ben"}
_RESTRICTED_FLAGS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
    "can_edit_tag",
)
_ADMIN_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
)

Answer = tuple[int, dict[str, Any]]
"""An HTTP status and Telegram's JSON body."""


def ok(result: Any) -> Answer:
    return 200, {"ok": True, "result": result}


def error(code: int, description: str) -> Answer:
    return code, {"ok": False, "error_code": code, "description": description}


def member(status: str, **extra: Any) -> Answer:
    body: dict[str, Any] = {"user": PERSON, "status": status, **extra}
    if status == "restricted":
        body |= dict.fromkeys(_RESTRICTED_FLAGS, False) | {"until_date": 0}
    elif status == "administrator":
        body |= dict.fromkeys(_ADMIN_RIGHTS, False) | {"can_be_edited": False}
        body["is_anonymous"] = False
    elif status == "creator":
        body["is_anonymous"] = False
    elif status == "kicked":
        body["until_date"] = 0
    return ok(body)


@dataclass
class MockedTelegram:
    """Answers each method from a queue of prepared answers and records every call."""

    answers: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    clock: FakeClock | None = None
    slow: dict[str, float] = field(default_factory=dict)
    """Seconds of ``clock`` a method takes to answer."""
    answered_at: dict[str, float] = field(default_factory=dict)

    def handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        params = dict(parse_qsl(request.content.decode()))
        if method == "getMe":
            return httpx.Response(200, json=ok(BOT)[1])
        if self.clock is not None:
            self.clock.advance(self.slow.get(method, 0.0))
            self.answered_at[method] = self.clock.now()
        self.calls.append((method, params))
        queued = self.answers.get(method)
        code, body = queued.pop(0) if queued else ok(True)
        return httpx.Response(code, content=json.dumps(body).encode())

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[MockedTelegram, TelegramBotService]]:
    mocked = MockedTelegram()
    request = AnswerRecordingRequest(httpx_kwargs={"transport": httpx.MockTransport(mocked.handle)})
    bot = Bot(TOKEN, request=request)
    limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000, max_hold=0.2))
    service = TelegramBotService(TOKEN, bot=bot, limiter=limiter)
    await service.start()
    yield mocked, service
    await service.aclose()


def remove() -> RemoveUser:
    return RemoveUser(user_id=USER, channel_id=str(CHANNEL), subscription_id="s", reason="expiry")


USER_IS_ADMIN = "Bad Request: user is an administrator of the chat"
AMBIGUOUS = [
    "Bad Request: user not found",
    "Bad Request: member not found",
    "Bad Request: PARTICIPANT_ID_INVALID",
    "Bad Request: USER_ID_INVALID",
]

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
        pytest.param(error(400, text), ["banChatMember"], "succeeded", "unknown", id=text[13:])
        for text in AMBIGUOUS
    ],
]


@pytest.mark.parametrize(("lookup", "follow", "status", "member_status"), DECISIONS)
async def test_what_follows_each_lookup(
    telegram: tuple[MockedTelegram, TelegramBotService],
    lookup: Answer,
    follow: list[str],
    status: str,
    member_status: str,
) -> None:
    mocked, service = telegram
    mocked.answers["getChatMember"] = [lookup]
    outcome = await service.remove_user(remove())
    assert mocked.methods() == ["getChatMember", *follow]
    assert outcome.status == status
    assert outcome.detail["memberStatus"] == member_status
    for method, params in mocked.calls[1:]:
        assert params["chat_id"] == str(CHANNEL) and params["user_id"] == str(USER)
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
    telegram: tuple[MockedTelegram, TelegramBotService], status: str, reason: str
) -> None:
    mocked, service = telegram
    mocked.answers["getChatMember"] = [member(status)]
    with pytest.raises(PermanentError) as caught:
        await service.remove_user(remove())
    assert caught.value.detail["reason"] == reason
    assert mocked.methods() == ["getChatMember"]


@pytest.mark.parametrize("text", AMBIGUOUS)
async def test_an_ambiguous_lookup_and_a_refused_ban_is_not_done(
    telegram: tuple[MockedTelegram, TelegramBotService], text: str
) -> None:
    mocked, service = telegram
    mocked.answers["getChatMember"] = [error(400, text)]
    mocked.answers["banChatMember"] = [error(400, "Bad Request: user not found")]
    with pytest.raises(PermanentError) as caught:
        await service.remove_user(remove())
    assert caught.value.detail["memberLookupError"] == text
    assert mocked.methods() == ["getChatMember", "banChatMember"]


@pytest.mark.parametrize(
    ("answers", "calls", "raised"),
    [
        pytest.param(
            {"getChatMember": [error(502, "Bad Gateway")]},
            ["getChatMember"],
            RetryableError,
            id="lookup-502",
        ),
        pytest.param(
            {"getChatMember": [member("member")], "unbanChatMember": [error(502, "Bad Gateway")]},
            ["getChatMember", "unbanChatMember"],
            RetryableError,
            id="unban-502",
        ),
        pytest.param(
            {
                "getChatMember": [member("member")],
                # Promoted between the lookup and the unban: Telegram's USER_ADMIN_INVALID.
                "unbanChatMember": [
                    error(400, "Bad Request: user is an administrator of the chat")
                ],
            },
            ["getChatMember", "unbanChatMember"],
            PermanentError,
            id="promoted-meanwhile",
        ),
        pytest.param(
            {
                "getChatMember": [member("member")],
                "unbanChatMember": [
                    error(400, "Bad Request: not enough rights to restrict/unrestrict chat member")
                ],
            },
            ["getChatMember", "unbanChatMember"],
            PermanentError,
            id="no-restrict-right",
        ),
    ],
)
async def test_a_failed_call_stops_the_removal(
    telegram: tuple[MockedTelegram, TelegramBotService],
    answers: dict[str, list[Answer]],
    calls: list[str],
    raised: type[Exception],
) -> None:
    mocked, service = telegram
    mocked.answers.update(answers)
    with pytest.raises(raised):
        await service.remove_user(remove())
    assert mocked.methods() == calls


async def test_a_retry_after_an_unban_answered_502_finds_the_user_out(
    telegram: tuple[MockedTelegram, TelegramBotService],
) -> None:
    # The 502 may have come after Telegram did the work: the retry's lookup says "left", and
    # the removal is done in one more call.
    mocked, service = telegram
    mocked.answers["getChatMember"] = [member("member"), member("left")]
    mocked.answers["unbanChatMember"] = [error(502, "Bad Gateway")]
    with pytest.raises(RetryableError):
        await service.remove_user(remove())
    outcome = await service.remove_user(remove())
    assert outcome.status == "noop"
    assert mocked.methods() == ["getChatMember", "unbanChatMember", "getChatMember"]


async def test_held_links_are_revoked_before_the_lookup(
    telegram: tuple[MockedTelegram, TelegramBotService],
) -> None:
    # A link left valid would let the removed user back in: the ledger's links go first.
    mocked, service = telegram
    url = "https://t.me/+held"
    await service.links.record(str(CHANNEL), USER, url, 2_000_000_000.0)
    revoked = {"invite_link": url, "creator": BOT, "is_primary": False, "is_revoked": True}
    mocked.answers["revokeChatInviteLink"] = [ok(revoked | {"creates_join_request": False})]
    mocked.answers["getChatMember"] = [member("member")]
    outcome = await service.remove_user(remove())
    assert outcome.status == "succeeded"
    assert mocked.methods() == ["revokeChatInviteLink", "getChatMember", "unbanChatMember"]
    assert await service.links.held(str(CHANNEL), USER) == []


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
    mocked = MockedTelegram(clock=clock, slow=slow)
    mocked.answers["getChatMember"] = [member("member")]
    request = AnswerRecordingRequest(httpx_kwargs={"transport": httpx.MockTransport(mocked.handle)})
    budget = Budget(None, 1000, clock=clock)
    limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000), budget=budget)
    service = TelegramBotService(TOKEN, bot=Bot(TOKEN, request=request), limiter=limiter)
    await service.start()
    try:
        assert (await service.remove_user(remove())).status == "succeeded"
    finally:
        await service.aclose()
    assert KICK_SERVER_HOLD == 1.0
    answered = mocked.answered_at["unbanChatMember"]
    expected = answered - KICK_SERVER_HOLD if hinted else answered
    chat_window = limiter._window("channel", str(CHANNEL))
    for window in (budget, chat_window):
        assert isinstance(window.store, MemoryStore)
        # The unban was the last call: the latest cool-down start is its own.
        assert max(window.store.state.done) == pytest.approx(expected)
