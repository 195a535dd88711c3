"""A mocked bot: python-telegram-bot's real ``Bot`` and request layer over ``httpx.MockTransport``.

Like aiogram's ``tests/mocked_bot.py``: a test queues the Bot API answers it wants, per method,
and the real client parses them, raises its own exceptions, and botqueue's one mapping function
(botqueue/telegram/errors.py) turns them into botqueue errors, all without a server. Every
request is recorded with its parameters. A call with no answer prepared gets a 500 and is
listed in ``unprepared``: the ``mocked_service`` fixture fails the test when any is left.

Error texts passed to ``fail`` should be Telegram's own (botqueue/sandbox/errors.py has them):
the tables these tests drive are decisions on Telegram's words. With the fixtures of
tests/conftest.py::

    async def test_x(mocked_service: TelegramBotService, mocked_bot: MockedBot) -> None:
        mocked_bot.answer("getChatMember", chat_member(1002, "member"))
        mocked_bot.fail("banChatMember", errors.CHAT_ADMIN_REQUIRED)
        with pytest.raises(TelegramPermanentError):
            await mocked_service.remove_user(remove(1002))
        assert mocked_bot.methods() == ["getChatMember", "banChatMember"]
        assert mocked_bot.calls("banChatMember")[0]["user_id"] == 1002
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
from telegram import Bot

from botqueue.sandbox.errors import code_for

# The sandbox's field lists say once which fields python-telegram-bot requires of a member.
from botqueue.sandbox.objects import _CHANNEL_RIGHTS, _COMMON_RIGHTS, _RESTRICTED_FLAGS
from botqueue.telegram.request import AnswerRecordingRequest

TOKEN = "123456:mocked-bot-token-secret"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Mocked", "username": "mocked_bot"}
ANSWERED_ALWAYS = {"getMe": BOT_USER}
"""Methods answered the same every time unless a test queues something else."""


@dataclass(frozen=True)
class Fail:
    """An error answer in a table of answers: Telegram's description, and its retry_after."""

    description: str
    retry_after: int | None = None


@dataclass(frozen=True)
class Sent:
    """One request the bot made: the Bot API method and its parameters, decoded."""

    method: str
    params: dict[str, Any]


def _decode(request: httpx.Request) -> dict[str, Any]:
    # python-telegram-bot posts form fields, JSON-encoding every value that is not a string.
    params: dict[str, Any] = {}
    for name, value in parse_qsl(request.content.decode()):
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


class MockedBot:
    """Queued Bot API answers per method; every request recorded in ``sent``."""

    def __init__(self, token: str = TOKEN, *, clock: Any = None) -> None:
        self.token = token
        self.sent: list[Sent] = []
        self.unprepared: list[Sent] = []
        self.clock = clock
        """A fake clock (``advance``, ``now``) that the server's answers move, when given."""
        self.slow: dict[str, float] = {}
        """Seconds of ``clock`` a method takes to answer."""
        self.answered_at: dict[str, float] = {}
        """The ``clock`` time of each method's latest answer."""
        self._answers: defaultdict[str, deque[tuple[int, dict[str, Any]]]] = defaultdict(deque)
        request = AnswerRecordingRequest(
            httpx_kwargs={"transport": httpx.MockTransport(self._handle)}
        )
        self.bot = Bot(token, request=request)
        """Give this to ``TelegramBotService(token, bot=...)``."""

    def _handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        sent = Sent(method, _decode(request))
        self.sent.append(sent)
        if self.clock is not None and method != "getMe":
            self.clock.advance(self.slow.get(method, 0.0))
            self.answered_at[method] = self.clock.now()
        if self._answers[method]:
            status, body = self._answers[method].popleft()
        elif method in ANSWERED_ALWAYS:
            status, body = 200, {"ok": True, "result": ANSWERED_ALWAYS[method]}
        else:
            self.unprepared.append(sent)
            status, body = 500, {"ok": False, "error_code": 500, "description": "no answer"}
        return httpx.Response(status, json=body)

    def answer(self, method: str, result: Any) -> None:
        """Queue a successful answer (the ``result`` object of the Bot API) for ``method``."""
        self._answers[method].append((200, {"ok": True, "result": result}))

    def fail(self, method: str, description: str, *, retry_after: int | None = None) -> None:
        """Queue an error answer; the status follows from the description, as Telegram's."""
        code = code_for(description)
        body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self._answers[method].append((code, body))

    def prepare(self, method: str, *answers: Any) -> None:
        """Queue answers for ``method`` in order: a ``Fail``, or a result as ``answer`` takes."""
        for answer in answers:
            if isinstance(answer, Fail):
                self.fail(method, answer.description, retry_after=answer.retry_after)
            else:
                self.answer(method, answer)

    def calls(self, method: str) -> list[dict[str, Any]]:
        """The parameters of every request of ``method``, in order."""
        return [sent.params for sent in self.sent if sent.method == method]

    def methods(self) -> list[str]:
        """The methods called, in order, leaving out getMe."""
        return [sent.method for sent in self.sent if sent.method != "getMe"]


# -- Bot API objects, as Telegram sends them --------------------------------------------------

_ids = itertools.count(1)


def user(user_id: int, *, is_bot: bool = False) -> dict[str, Any]:
    """A User."""
    return {"id": user_id, "is_bot": is_bot, "first_name": f"user{user_id}"}


def chat_member(user_id: int, status: str, **fields: Any) -> dict[str, Any]:
    """A ChatMember of ``status`` (creator, administrator, member, restricted, left, kicked)
    in a channel, with the fields the sandbox gives it (every one python-telegram-bot needs)."""
    member: dict[str, Any] = {"status": status, "user": user(user_id)}
    if status == "creator":
        member["is_anonymous"] = False
    elif status == "administrator":
        member |= {"can_be_edited": False, "is_anonymous": False}
        member |= dict.fromkeys((*_COMMON_RIGHTS, *_CHANNEL_RIGHTS), True)
    elif status == "restricted":
        member |= dict.fromkeys(_RESTRICTED_FLAGS, False)
        member |= {"is_member": False, "until_date": 0}
    elif status == "kicked":
        member["until_date"] = 0
    return member | fields


def invite_link(name: str = "sub-1", *, revoked: bool = False) -> dict[str, Any]:
    """A ChatInviteLink as createChatInviteLink (or, revoked, revokeChatInviteLink) returns."""
    return {
        "invite_link": f"https://t.me/+mocked{next(_ids):06d}",
        "creator": BOT_USER,
        "creates_join_request": False,
        "is_primary": False,
        "is_revoked": revoked,
        "name": name,
        "member_limit": 1,
        "expire_date": int(time.time()) + 86400,
    }


def message(chat_id: int) -> dict[str, Any]:
    """A Message the bot sent to a private chat."""
    return {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": f"user{chat_id}"},
        "from": BOT_USER,
        "text": "…",
    }
