"""The Bot API endpoint: ``/bot<TOKEN>/<method>``, answered in Telegram's envelope.

A call goes through, in order: the request leg of injected latency, token (401), flood
control (429), method name (404), injected fault, hang, the answer leg of injected latency,
then the method itself. Every call is counted once its request leg is over, including the
ones answered with an error.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from typing import Any

from aiohttp import web

from .access import Call
from .errors import NOT_FOUND, UNAUTHORIZED, ApiError, too_many_requests
from .faults import FaultPlan, FloodControl
from .methods import CANONICAL, METHODS
from .params import Args, read_params
from .state import SandboxState
from .world import WorldSpec


class Sandbox:
    """One running sandbox: the world it started with, its state, faults and flood control."""

    def __init__(self, world: WorldSpec) -> None:
        self.initial = world
        self.state = SandboxState(world)
        self.plan = FaultPlan()
        self.flood = FloodControl()
        self.released = asyncio.Event()

    def reset(self) -> None:
        """Back to the starting world, with no faults, no flood limit and no history."""
        self.state.reset(self.initial)
        self.plan.clear()
        self.flood.set_rate(None)

    def release_hung_calls(self) -> None:
        """Let hung calls finish (with a 500) so the server can stop."""
        self.released.set()


SANDBOX = web.AppKey("sandbox", Sandbox)
"""Where the application keeps its :class:`Sandbox`."""


def telegram_json(body: Any, status: int = 200) -> web.Response:
    """A JSON response the way Telegram sends it."""
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return web.Response(text=text, status=status, content_type="application/json")


async def _answer(
    sandbox: Sandbox, token: str, method: str | None, answer_leg: float, request: web.Request
) -> Any:
    state = sandbox.state
    bot = state.bots.get(token)
    if bot is None:
        raise ApiError(UNAUTHORIZED)
    retry_after = sandbox.flood.admit(token)
    if retry_after is not None:
        raise ApiError(too_many_requests(retry_after), retry_after=retry_after)
    if method is None:
        raise ApiError(NOT_FOUND)
    fault = sandbox.plan.take_fault(method)
    if fault is not None:
        raise fault
    if sandbox.plan.take_hang(method):
        await sandbox.released.wait()
        raise ApiError("Internal Server Error: the sandbox is stopping", code=500)
    if answer_leg:
        await asyncio.sleep(answer_leg)
    args = Args(await read_params(request))
    result = METHODS[method](Call(state, bot, args))
    # A method that takes time on Telegram's side returns an awaitable (a plain unban).
    return await result if inspect.isawaitable(result) else result


async def bot_api(request: web.Request) -> web.Response:
    """Answer one Bot API call."""
    sandbox = request.app[SANDBOX]
    raw_method = request.match_info["method"]
    method = CANONICAL.get(raw_method.lower())
    request_leg, answer_leg = sandbox.plan.legs(method or raw_method)
    if request_leg:
        # The network on the way in: the server has not seen the call yet, flood control
        # included, so a client cannot tell this part of a round trip from the answer's.
        await asyncio.sleep(request_leg)
    state = sandbox.state
    state.total_requests += 1
    state.requests[method or raw_method] += 1
    try:
        result = await _answer(sandbox, request.match_info["token"], method, answer_leg, request)
    except ApiError as error:
        if error.code == 429:
            state.rate_limited += 1
        return telegram_json(error.envelope(), error.code)
    return telegram_json({"ok": True, "result": result})


async def not_found(request: web.Request) -> web.Response:
    """Any other path: Telegram's 404 envelope."""
    return telegram_json(ApiError(NOT_FOUND).envelope(), 404)
