"""A scripted BotService and outcome hooks for the observability tests (worker subprocesses
import them as tests.obs_services:X).

The script is the subscription id's (or listing id's) prefix:

- ``ok-``: succeeds with an invite link;  ``noop-``: nothing to do;
- ``flaky-``: fails once (retryable), then succeeds;
- ``perm-``: fails for good (missing rights);  ``dead-``: always fails (retryable);
- ``boom-``: always raises an unexpected RuntimeError (retried like a retryable one).

When TELEGRAM_BOT_TOKEN is set, every failure's text (and a log line per call) carries it,
in the shapes real failures do: request URLs, an aiohttp client error, an error's detail.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from typing import Any

import structlog
from aiohttp import ClientResponseError, RequestInfo
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from botqueue.errors import PermanentError, RetryableError
from botqueue.observability.outcomes import OutcomeEvent
from botqueue.operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions
from botqueue.service import Outcome

INVITE_LINK = "https://t.me/+scripted-link"
MISSING = ["can_restrict_members"]


def script_of(op: AnyOperation) -> str:
    """The prefix that says what the service does with this operation."""
    name = (op.listing_id or "") if isinstance(op, VerifyPermissions) else op.subscription_id
    return name.partition("-")[0]


def _url(token: str, method: str) -> str:
    return f"https://api.telegram.org/bot{token}/{method}"


def client_error(token: str) -> ClientResponseError:
    """A real aiohttp client error, whose text carries the request URL."""
    url = URL(_url(token, "getChatMember"))
    info = RequestInfo(url, "POST", CIMultiDictProxy(CIMultiDict()), url)
    return ClientResponseError(info, (), status=502, message="Bad Gateway")


class ScriptedService:
    """Performs operations as their prefix says; counts attempts per operation in memory."""

    def __init__(self) -> None:
        self.token = os.environ.get("TELEGRAM_BOT_TOKEN", "")
        self.attempts: Counter[str] = Counter()
        self.log = structlog.get_logger("tests.scripted")

    def _fail_text(self, what: str) -> str:
        if not self.token:
            return what
        return f"{what} calling {_url(self.token, 'banChatMember')} (token {self.token})"

    async def _do(self, op: AnyOperation) -> Outcome:
        script = script_of(op)
        key = op.deduplication_id()
        self.attempts[key] += 1
        if self.token:
            # Libraries log request URLs; these lines must come out redacted.
            logging.getLogger("httpx").warning("HTTP Request: POST %s", _url(self.token, "x"))
            self.log.warning("calling the Bot API", url=_url(self.token, "x"), script=script)
        if script == "ok":
            return Outcome("succeeded", {"inviteLink": INVITE_LINK})
        if script == "noop":
            return Outcome("noop", {"memberStatus": "member"})
        if script == "flaky" and self.attempts[key] == 1:
            if self.token:
                raise RetryableError(str(client_error(self.token)))
            raise RetryableError("temporarily unavailable")
        if script == "flaky":
            return Outcome("succeeded", {"inviteLink": INVITE_LINK})
        if script == "perm":
            detail: dict[str, Any] = {"reason": "not_enough_rights", "missingRights": MISSING}
            if self.token:
                detail["request"] = _url(self.token, "banChatMember")
            raise PermanentError(self._fail_text("Bad Request: not enough rights"), detail=detail)
        if script == "dead":
            raise RetryableError(self._fail_text("Internal Server Error"))
        if script == "boom":
            raise RuntimeError(self._fail_text("unexpected"))
        raise AssertionError(f"no script {script!r}")

    async def invite_user(self, op: InviteUser) -> Outcome:
        """Follow the script."""
        return await self._do(op)

    async def remove_user(self, op: RemoveUser) -> Outcome:
        """Follow the script."""
        return await self._do(op)

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome:
        """Follow the script."""
        return await self._do(op)


def raising_hook(event: OutcomeEvent) -> None:
    """An outcome hook that always raises (with the token in its text, when there is one)."""
    raise ValueError(f"hook failed for {event.message_id} {os.environ.get('TELEGRAM_BOT_TOKEN')}")


def file_hook(event: OutcomeEvent) -> None:
    """An outcome hook that appends each event to $BOTQUEUE_TEST_OUTCOMES as a JSON line."""
    with open(os.environ["BOTQUEUE_TEST_OUTCOMES"], "a") as out:
        out.write(json.dumps(event.model_dump(by_alias=True)) + "\n")
