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
import json
from dataclasses import dataclass
from typing import Any

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


def description_of(payload: bytes) -> str | None:
    """The ``description`` of a Bot API error body, or None when there is none."""
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    description = body.get("description") if isinstance(body, dict) else None
    return description if isinstance(description, str) else None


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
        return code, payload
