"""The control API under ``/_sandbox/``: change the world, inject faults, read what happened.

JSON in, JSON out. A refused request answers 400 (404 for an unknown chat) with
``{"ok": false, "error": "<why>"}``; docs/sandbox.md has an example for every endpoint.
"""

from __future__ import annotations

from aiohttp import web

from .channel import Channel
from .control_common import (
    ControlError,
    chat_of,
    control_errors,
    int_field,
    read_body,
    read_object,
    reply,
    sandbox_of,
)
from .control_faults import add_fault, clear_faults, flood, hang, kick, latency
from .state import JoinRefused
from .world import ChannelSpec, RightsSpec, UserSpec, parse_world

PREFIX = "/_sandbox"
"""Where the control API lives; Bot API paths never start with it."""


async def health(request: web.Request) -> web.Response:
    """GET health: the sandbox is up."""
    return reply({"ok": True, "bots": len(sandbox_of(request).state.bots)})


async def reset(request: web.Request) -> web.Response:
    """POST reset: back to the world the sandbox started with."""
    sandbox_of(request).reset()
    return reply()


async def get_world(request: web.Request) -> web.Response:
    """GET world: the current world as a world file."""
    return reply(sandbox_of(request).state.world())


async def put_world(request: web.Request) -> web.Response:
    """POST world: replace the world (links, messages and join requests are dropped)."""
    sandbox_of(request).state.load(parse_world(await read_body(request)))
    return reply()


async def put_channel(request: web.Request) -> web.Response:
    """POST channels: add or replace one chat."""
    state = sandbox_of(request).state
    spec = ChannelSpec.model_validate(await read_body(request))
    people = {*spec.admins, *spec.members, *spec.restricted, *spec.restricted_out, *spec.banned}
    if spec.creator is not None:
        people.add(spec.creator)
    unknown = sorted(people - set(state.users))
    if unknown:
        raise ControlError(f"unknown users {unknown}; add them first")
    state.put_channel(Channel.from_spec(spec))
    return reply({"ok": True, "channel": spec.model_dump()})


async def put_user(request: web.Request) -> web.Response:
    """POST users: add or replace one user."""
    spec = UserSpec.model_validate(await read_body(request))
    sandbox_of(request).state.users[spec.id] = spec
    return reply({"ok": True, "user": spec.model_dump()})


async def update_user(request: web.Request) -> web.Response:
    """PATCH users/{user_id}: change some of a user's fields, such as ``known_to_bot``."""
    state = sandbox_of(request).state
    user_id = int_field(dict(request.match_info), "user_id")
    user = state.users.get(user_id)
    if user is None:
        raise ControlError(f"no user {user_id}", status=404)
    changes = await read_object(request)
    if changes.get("id", user_id) != user_id:
        raise ControlError("a user's id cannot change")
    spec = UserSpec.model_validate({**user.model_dump(), **changes})
    state.users[user_id] = spec
    return reply({"ok": True, "user": spec.model_dump()})


async def set_state(request: web.Request) -> web.Response:
    """PATCH or POST channels/{chat}/state {"state"}: "active", "inaccessible" or "deleted"."""
    chat = chat_of(sandbox_of(request).state, request.match_info["chat"])
    body = await read_object(request)
    spec = ChannelSpec.model_validate({**chat.to_spec(), "state": body.get("state")})
    chat.state = spec.state
    return reply({"ok": True, "chat": chat.to_spec()})


async def set_bot(request: web.Request) -> web.Response:
    """PATCH or POST channels/{chat}/bot: the bot's rights, null (not a member) or "kicked"."""
    chat = chat_of(sandbox_of(request).state, request.match_info["chat"])
    body = await read_body(request)
    value = body.get("rights") if isinstance(body, dict) and "rights" in body else body
    if value is not None and not isinstance(value, dict) and value != "kicked":
        raise ControlError('rights must be an object of rights, null or "kicked"')
    chat.bot_rights = RightsSpec.model_validate(value) if isinstance(value, dict) else None
    chat.bot_kicked = value == "kicked"
    return reply()


async def members(request: web.Request) -> web.Response:
    """GET channels/{chat}/members: creator, admins, members, restricted, banned, pending."""
    return reply(chat_of(sandbox_of(request).state, request.match_info["chat"]).roster())


async def join(request: web.Request) -> web.Response:
    """POST join {user_id, invite_link}: a user joins through a link."""
    body = await read_object(request)
    url = body.get("invite_link")
    if not isinstance(url, str):
        raise ControlError("invite_link must be a string")
    state = sandbox_of(request).state
    user_id = int_field(body, "user_id")
    try:
        status = state.join(user_id, url)
    except JoinRefused as refused:
        raise ControlError(str(refused)) from None
    return reply({"ok": True, "status": status, "chat_id": state.links[url].chat_id})


async def messages(request: web.Request) -> web.Response:
    """GET messages[?chat_id=]: every message bots sent, oldest first."""
    sent = sandbox_of(request).state.messages
    if "chat_id" in request.query:
        chat_id = int_field(dict(request.query), "chat_id")
        sent = [m for m in sent if m.chat_id == chat_id]
    return web.json_response([m.record() for m in sent])


async def requests(request: web.Request) -> web.Response:
    """GET requests: calls per method, the total, and how many were answered 429."""
    return reply(sandbox_of(request).state.request_counts())


async def migrate(request: web.Request) -> web.Response:
    """POST migrate {chat_id, to_chat_id}: the chat moves; its old id answers 400 + new id."""
    body = await read_object(request)
    state = sandbox_of(request).state
    chat = chat_of(state, str(body.get("chat_id")))
    to_chat_id = int_field(body, "to_chat_id")
    if to_chat_id >= 0 or to_chat_id == chat.id:
        raise ControlError("to_chat_id must be another negative chat id")
    new = state.migrate(chat.id, to_chat_id)
    return reply({"ok": True, "chat": new.to_spec()})


async def clock(request: web.Request) -> web.Response:
    """POST clock {advance: seconds}: move the sandbox's wall clock (for link expiry)."""
    body = await read_object(request)
    advance = body.get("advance", 0)
    if isinstance(advance, bool) or not isinstance(advance, int | float):
        raise ControlError("advance must be a number of seconds")
    state = sandbox_of(request).state
    state.clock_offset += float(advance)
    return reply({"ok": True, "now": state.now()})


def control_app() -> web.Application:
    """The control API as a sub-application, to be mounted at :data:`PREFIX`."""
    app = web.Application(middlewares=[control_errors])
    app.router.add_get("/health", health)
    app.router.add_post("/reset", reset)
    app.router.add_get("/world", get_world)
    app.router.add_post("/world", put_world)
    app.router.add_post("/channels", put_channel)
    app.router.add_post("/users", put_user)
    app.router.add_patch("/users/{user_id}", update_user)
    app.router.add_patch("/channels/{chat}/bot", set_bot)
    app.router.add_post("/channels/{chat}/bot", set_bot)
    app.router.add_patch("/channels/{chat}/state", set_state)
    app.router.add_post("/channels/{chat}/state", set_state)
    app.router.add_get("/channels/{chat}/members", members)
    app.router.add_post("/join", join)
    app.router.add_get("/messages", messages)
    app.router.add_get("/requests", requests)
    app.router.add_post("/faults", add_fault)
    app.router.add_delete("/faults", clear_faults)
    app.router.add_post("/latency", latency)
    app.router.add_post("/hang", hang)
    app.router.add_post("/flood", flood)
    app.router.add_post("/kick", kick)
    app.router.add_post("/migrate", migrate)
    app.router.add_post("/clock", clock)
    return app
