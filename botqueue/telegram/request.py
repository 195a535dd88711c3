"""python-telegram-bot's HTTP request, keeping Telegram's error description as sent.

python-telegram-bot strips "Bad Request: " from a 400's description and then calls
``str.capitalize()`` on the rest, which lower-cases everything but the first letter:
"Bad Request: PARTICIPANT_ID_INVALID" reaches the exception as "Participant_id_invalid".
Operators search for Telegram's words, and reason codes are matched on them, so the service
reads the description from the response itself. The request records it in a holder that the
caller puts in a context variable before the call: a holder, not a value, so that the
description still reaches the caller if the library ever runs the request in another task.
"""

from __future__ import annotations

import contextvars
import datetime as dtm
import json
from dataclasses import dataclass
from typing import Any

from telegram.error import RetryAfter, TelegramError
from telegram.request import HTTPXRequest


@dataclass
class ErrorAnswer:
    """Telegram's answer to a failed call: the HTTP status and the description verbatim."""

    status: int | None = None
    description: str | None = None


current_answer: contextvars.ContextVar[ErrorAnswer | None] = contextvars.ContextVar(
    "botqueue_telegram_error_answer", default=None
)
"""The holder the next request of this context records its error answer in."""


def _body(payload: bytes) -> dict[str, Any]:
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def description_of(payload: bytes) -> str | None:
    """The ``description`` of a Bot API error body, or None when there is none."""
    description = _body(payload).get("description")
    return description if isinstance(description, str) else None


class FloodAnswer(RetryAfter):
    """python-telegram-bot's RetryAfter, built without reading its own ``retry_after``.

    RetryAfter's constructor reads that property, which warns (PTBDeprecationWarning) unless
    the PTB_TIMEDELTA environment variable is set; botqueue sets no environment variable, so
    the request raises this one instead. Everything that catches RetryAfter still does.
    """

    __slots__ = ()

    def __init__(self, seconds: float) -> None:
        self._retry_after = dtm.timedelta(seconds=seconds)
        TelegramError.__init__(self, f"Flood control exceeded. Retry in {seconds:g} seconds")


def _flood_seconds(payload: bytes) -> float | None:
    parameters = _body(payload).get("parameters")
    if not isinstance(parameters, dict) or parameters.get("migrate_to_chat_id"):
        return None
    seconds = parameters.get("retry_after")
    return float(seconds) if isinstance(seconds, int | float) and seconds else None


class AnswerRecordingRequest(HTTPXRequest):
    """An HTTPXRequest that records each error answer's status and description verbatim."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """Perform the request; on an error status, record it in the context's holder."""
        code, payload = await super().do_request(*args, **kwargs)
        if code >= 400:
            answer = current_answer.get()
            if answer is not None:
                # Only errors are parsed: a success costs nothing more than before.
                answer.status = code
                answer.description = description_of(payload)
            seconds = _flood_seconds(payload)
            if seconds is not None:
                # Raised here, as python-telegram-bot would raise its RetryAfter next.
                raise FloodAnswer(seconds)
        return code, payload
