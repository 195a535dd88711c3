"""What every control-API handler shares: reading JSON, answering, refusing, finding chats.

A refused request answers 400 (404 for an unknown chat) with ``{"ok": false, "error": ...}``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from .api import SANDBOX, Sandbox
from .channel import Channel
from .state import SandboxState


class ControlError(Exception):
    """A control request that cannot be done; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def reply(data: Any = None, status: int = 200) -> web.Response:
    """A JSON answer; ``{"ok": true}`` when there is nothing else to say."""
    return web.json_response({"ok": True} if data is None else data, status=status)


async def read_body(request: web.Request) -> Any:
    """The request's JSON body, None when it has none."""
    if not request.body_exists:
        return None
    try:
        return await request.json()
    except ValueError:
        raise ControlError("the body is not valid JSON") from None


async def read_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object."""
    body = await read_body(request)
    if not isinstance(body, dict):
        raise ControlError("expected a JSON object")
    return body


def int_field(body: dict[str, Any], name: str) -> int:
    """An integer field (a JSON number or a numeric string)."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ControlError(f"{name} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"{name} must be an integer") from None


def chat_of(state: SandboxState, ref: str) -> Channel:
    """A chat by id or "@username"; 404 when there is none."""
    chat = state.find_chat(ref if ref.startswith("@") else int_field({"chat": ref}, "chat"))
    if chat is None:
        raise ControlError(f"no chat {ref}", status=404)
    return chat


def sandbox_of(request: web.Request) -> Sandbox:
    """The running sandbox."""
    # config_dict reaches the parent application, where the sandbox is kept.
    return request.config_dict[SANDBOX]


@web.middleware
async def control_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Turn refusals and invalid input into ``{"ok": false, "error": ...}``."""
    try:
        response: web.StreamResponse = await handler(request)
    except ControlError as error:
        return web.json_response({"ok": False, "error": str(error)}, status=error.status)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in item['loc']) or 'body'}: {item['msg']}"
            for item in error.errors()
        )
        return web.json_response({"ok": False, "error": problems}, status=400)
    return response
