"""Method parameters as the Bot API reads them: from the query string and any body encoding.

Telegram accepts the query string, application/x-www-form-urlencoded, multipart/form-data
and JSON. Like the official server, every value becomes a string: nested JSON values are
re-encoded, so python-telegram-bot's form fields and a JSON body read the same way.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from .errors import CHAT_ID_EMPTY, INVALID_USER_ID_SPECIFIED, ApiError

_INT32 = (-(2**31), 2**31 - 1)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"))


async def read_params(request: web.Request) -> dict[str, str]:
    """Collect a request's parameters; the body wins over the query string."""
    params = {key: value for key, value in request.query.items()}
    if request.method == "GET" or not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError("Bad Request: can't parse JSON object") from None
        if not isinstance(body, dict):
            raise ApiError("Bad Request: JSON object expected")
        params.update({key: _text(value) for key, value in body.items()})
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        params.update({key: value for key, value in form.items() if isinstance(value, str)})
    return params


def _integer(text: str) -> int:
    # Like td::to_integer: a leading sign and digits; anything unparsable reads as 0.
    text = text.strip()
    try:
        return int(text)
    except ValueError:
        return 0


class Args:
    """Typed access to one call's parameters, with Telegram's parsing rules."""

    def __init__(self, params: dict[str, str]) -> None:
        self.params = params

    def text(self, name: str) -> str:
        """A string parameter ("" when absent)."""
        return self.params.get(name, "")

    def flag(self, name: str) -> bool:
        """A boolean: "true" (any case) or "1"."""
        return self.text(name).strip().lower() in ("true", "1")

    def clamped(
        self, name: str, default: int = 0, low: int = _INT32[0], high: int = _INT32[1]
    ) -> int:
        """An integer clamped into [low, high], as the official server reads most numbers."""
        raw = self.text(name)
        value = default if not raw else _integer(raw)
        return max(low, min(high, value))

    def chat_id(self) -> int | str:
        """The target chat: an integer id or an "@username"."""
        raw = self.text("chat_id").strip()
        if not raw:
            raise ApiError(CHAT_ID_EMPTY)
        if raw.startswith("@"):
            return raw
        try:
            return int(raw)
        except ValueError:
            return raw  # an unparsable id is simply a chat nobody has

    def user_id(self) -> int:
        """The target user's id; 0, negative or missing is Telegram's "invalid user_id"."""
        user_id = _integer(self.text("user_id"))
        if user_id <= 0:
            raise ApiError(INVALID_USER_ID_SPECIFIED)
        return user_id

    def json_value(self, name: str) -> Any:
        """A JSON-encoded parameter (such as reply_markup), or None when absent or invalid."""
        raw = self.text(name)
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None
