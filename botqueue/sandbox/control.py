"""The control API under ``/_sandbox/``: change the world, inject faults, read what happened.

JSON in, JSON out. A refused request answers 400 (404 for an unknown chat) with
``{"ok": false, "error": "<why>"}``; docs/sandbox.md has an example for every endpoint.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import ValidationError

from .api import SANDBOX, Sandbox
from .channel import Channel
from .faults import make_fault
from .state import JoinRefused, SandboxState
from .world import ChannelSpec, RightsSpec, UserSpec, parse_world

PREFIX = "/_sandbox"
"""Where the control API lives; Bot API paths never start with it."""


class ControlError(Exception):
    """A control request that cannot be done; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _reply(data: Any = None, status: int = 200) -> web.Response:
    return web.json_response({"ok": True} if data is None else data, status=status)


async def _body(request: web.Request) -> Any:
    if not request.body_exists:
        return None
    try:
        return await request.json()
    except ValueError:
        raise ControlError("the body is not valid JSON") from None


async def _object(request: web.Request) -> dict[str, Any]:
    body = await _body(request)
    if not isinstance(body, dict):
        raise ControlError("expected a JSON object")
    return body


def _int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ControlError(f"{name} must be an integer")
    try:
        return int(value)
    except ValueError:
        raise ControlError(f"{name} must be an integer") from None


def _chat(state: SandboxState, ref: str) -> Channel:
    chat = state.find_chat(ref if ref.startswith("@") else _int({"chat": ref}, "chat"))
    if chat is None:
        raise ControlError(f"no chat {ref}", status=404)
    return chat


def _sandbox(request: web.Request) -> Sandbox:
    # config_dict reaches the parent application, where the sandbox is kept.
    return request.config_dict[SANDBOX]


async def health(request: web.Request) -> web.Response:
    """GET health: the sandbox is up."""
    return _reply({"ok": True, "bots": len(_sandbox(request).state.bots)})


async def reset(request: web.Request) -> web.Response:
    """POST reset: back to the world the sandbox started with."""
    _sandbox(request).reset()
    return _reply()


async def get_world(request: web.Request) -> web.Response:
    """GET world: the current world as a world file."""
    return _reply(_sandbox(request).state.world())


async def put_world(request: web.Request) -> web.Response:
    """POST world: replace the world (links, messages and join requests are dropped)."""
    _sandbox(request).state.load(parse_world(await _body(request)))
    return _reply()


async def put_channel(request: web.Request) -> web.Response:
    """POST channels: add or replace one chat."""
    state = _sandbox(request).state
    spec = ChannelSpec.model_validate(await _body(request))
    people = {*spec.admins, *spec.members, *spec.restricted, *spec.banned}
    if spec.creator is not None:
        people.add(spec.creator)
    unknown = sorted(people - set(state.users))
    if unknown:
        raise ControlError(f"unknown users {unknown}; add them first")
    state.put_channel(Channel.from_spec(spec))
    return _reply({"ok": True, "channel": spec.model_dump()})


async def put_user(request: web.Request) -> web.Response:
    """POST users: add or replace one user."""
    spec = UserSpec.model_validate(await _body(request))
    _sandbox(request).state.users[spec.id] = spec
    return _reply({"ok": True, "user": spec.model_dump()})


async def set_bot(request: web.Request) -> web.Response:
    """PATCH or POST channels/{chat}/bot: the bot's rights, null (not a member) or "kicked"."""
    chat = _chat(_sandbox(request).state, request.match_info["chat"])
    body = await _body(request)
    value = body.get("rights") if isinstance(body, dict) and "rights" in body else body
    if value is not None and not isinstance(value, dict) and value != "kicked":
        raise ControlError('rights must be an object of rights, null or "kicked"')
    chat.bot_rights = RightsSpec.model_validate(value) if isinstance(value, dict) else None
    chat.bot_kicked = value == "kicked"
    return _reply()


async def members(request: web.Request) -> web.Response:
    """GET channels/{chat}/members: creator, admins, members, restricted, banned, pending."""
    return _reply(_chat(_sandbox(request).state, request.match_info["chat"]).roster())


async def join(request: web.Request) -> web.Response:
    """POST join {user_id, invite_link}: a user joins through a link."""
    body = await _object(request)
    url = body.get("invite_link")
    if not isinstance(url, str):
        raise ControlError("invite_link must be a string")
    state = _sandbox(request).state
    user_id = _int(body, "user_id")
    try:
        status = state.join(user_id, url)
    except JoinRefused as refused:
        raise ControlError(str(refused)) from None
    return _reply({"ok": True, "status": status, "chat_id": state.links[url].chat_id})


async def messages(request: web.Request) -> web.Response:
    """GET messages[?chat_id=]: every message bots sent, oldest first."""
    sent = _sandbox(request).state.messages
    if "chat_id" in request.query:
        chat_id = _int(dict(request.query), "chat_id")
        sent = [m for m in sent if m.chat_id == chat_id]
    return web.json_response([m.record() for m in sent])


async def requests(request: web.Request) -> web.Response:
    """GET requests: calls per method, the total, and how many were answered 429."""
    return _reply(_sandbox(request).state.request_counts())


async def add_fault(request: web.Request) -> web.Response:
    """POST faults: the next ``count`` calls of ``method`` answer the given error."""
    body = await _object(request)
    method = str(body.get("method") or "")
    if not method:
        raise ControlError("method is required")
    optional = {k: _int(body, k) for k in ("retry_after", "migrate_to_chat_id") if k in body}
    description = body.get("description")
    try:
        fault = make_fault(
            _int(body, "error_code"),
            str(description) if description else None,
            _int(body, "count") if "count" in body else 1,
            **optional,
        )
    except ValueError as error:
        raise ControlError(str(error)) from None
    _sandbox(request).plan.add_fault(method, fault)
    return _reply()


async def clear_faults(request: web.Request) -> web.Response:
    """DELETE faults: forget every fault, latency and hang."""
    _sandbox(request).plan.clear()
    return _reply()


async def latency(request: web.Request) -> web.Response:
    """POST latency {method or "*", seconds}: delay answers (0 removes the delay)."""
    body = await _object(request)
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ControlError("seconds must be a number")
    try:
        _sandbox(request).plan.set_latency(str(body.get("method") or "*"), float(seconds))
    except ValueError as error:
        raise ControlError(str(error)) from None
    return _reply()


async def hang(request: web.Request) -> web.Response:
    """POST hang {method, count}: those calls never answer until the client gives up."""
    body = await _object(request)
    count = _int(body, "count") if "count" in body else 1
    try:
        _sandbox(request).plan.add_hang(str(body.get("method") or "*"), count)
    except ValueError as error:
        raise ControlError(str(error)) from None
    return _reply()


async def flood(request: web.Request) -> web.Response:
    """POST flood {rate_per_second: N | null}: Telegram-style flood control per token."""
    body = await _object(request)
    rate = None if body.get("rate_per_second") is None else _int(body, "rate_per_second")
    try:
        _sandbox(request).flood.set_rate(rate)
    except ValueError as error:
        raise ControlError(str(error)) from None
    return _reply()


async def migrate(request: web.Request) -> web.Response:
    """POST migrate {chat_id, to_chat_id}: the chat moves; its old id answers 400 + new id."""
    body = await _object(request)
    state = _sandbox(request).state
    chat = _chat(state, str(body.get("chat_id")))
    to_chat_id = _int(body, "to_chat_id")
    if to_chat_id >= 0 or to_chat_id == chat.id:
        raise ControlError("to_chat_id must be another negative chat id")
    new = state.migrate(chat.id, to_chat_id)
    return _reply({"ok": True, "chat": new.to_spec()})


async def clock(request: web.Request) -> web.Response:
    """POST clock {advance: seconds}: move the sandbox's wall clock (for link expiry)."""
    body = await _object(request)
    advance = body.get("advance", 0)
    if isinstance(advance, bool) or not isinstance(advance, int | float):
        raise ControlError("advance must be a number of seconds")
    state = _sandbox(request).state
    state.clock_offset += float(advance)
    return _reply({"ok": True, "now": state.now()})


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


def control_app() -> web.Application:
    """The control API as a sub-application, to be mounted at :data:`PREFIX`."""
    app = web.Application(middlewares=[control_errors])
    app.router.add_get("/health", health)
    app.router.add_post("/reset", reset)
    app.router.add_get("/world", get_world)
    app.router.add_post("/world", put_world)
    app.router.add_post("/channels", put_channel)
    app.router.add_post("/users", put_user)
    app.router.add_patch("/channels/{chat}/bot", set_bot)
    app.router.add_post("/channels/{chat}/bot", set_bot)
    app.router.add_get("/channels/{chat}/members", members)
    app.router.add_post("/join", join)
    app.router.add_get("/messages", messages)
    app.router.add_get("/requests", requests)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_post("/latency", latency)
    app.router.add_post("/hang", hang)
    app.router.add_post("/flood", flood)
    app.router.add_post("/migrate", migrate)
    app.router.add_post("/clock", clock)
    return app
