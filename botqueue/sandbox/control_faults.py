"""The control API's fault endpoints: injected errors, latency, hung calls, flood control."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .control_common import ControlError, int_field, read_object, reply, sandbox_of
from .faults import make_fault


async def add_fault(request: web.Request) -> web.Response:
    """POST faults: the next ``count`` calls of ``method`` answer the given error.

    ``error_code`` may be left out when ``description`` has Telegram's prefix ("Bad Request:"
    400, "Forbidden:" 403, ...); a code that contradicts the prefix is refused.
    """
    body = await read_object(request)
    method = str(body.get("method") or "")
    if not method:
        raise ControlError("method is required")
    optional = {k: int_field(body, k) for k in ("retry_after", "migrate_to_chat_id") if k in body}
    description = body.get("description")
    code = int_field(body, "error_code") if body.get("error_code") is not None else None
    try:
        fault = make_fault(
            code,
            str(description) if description else None,
            int_field(body, "count") if "count" in body else 1,
            **optional,
        )
    except ValueError as error:
        raise ControlError(str(error)) from None
    sandbox_of(request).plan.add_fault(method, fault)
    return reply()


async def clear_faults(request: web.Request) -> web.Response:
    """DELETE faults: forget every fault, latency and hang."""
    sandbox_of(request).plan.clear()
    return reply()


def _number(body: dict[str, Any], name: str, default: float | None = None) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ControlError(f"{name} must be a number")
    return float(value)


async def latency(request: web.Request) -> web.Response:
    """POST latency {method or "*", seconds, jitter?, request_share?}: delay calls (0 removes).

    ``jitter`` (0-1) varies each leg uniformly by up to that fraction per call;
    ``request_share`` (0-1) is the part spent before the flood check (default 0: all of it
    before the answer).
    """
    body = await read_object(request)
    seconds, jitter, share = (
        _number(body, "seconds"),
        _number(body, "jitter", 0.0),
        _number(body, "request_share", 0.0),
    )
    try:
        sandbox_of(request).plan.set_latency(
            str(body.get("method") or "*"), seconds, jitter=jitter, request_share=share
        )
    except ValueError as error:
        raise ControlError(str(error)) from None
    return reply()


async def hang(request: web.Request) -> web.Response:
    """POST hang {method, count}: those calls never answer until the client gives up."""
    body = await read_object(request)
    count = int_field(body, "count") if "count" in body else 1
    try:
        sandbox_of(request).plan.add_hang(str(body.get("method") or "*"), count)
    except ValueError as error:
        raise ControlError(str(error)) from None
    return reply()


async def kick(request: web.Request) -> web.Response:
    """POST kick {seconds}: how long a plain unban of a member takes (TDLib: 1.0; default 0)."""
    seconds = _number(await read_object(request), "seconds")
    if seconds < 0:
        raise ControlError("seconds must be >= 0")
    sandbox_of(request).state.kick_seconds = seconds
    return reply()


async def flood(request: web.Request) -> web.Response:
    """POST flood {rate_per_second: N | null}: Telegram-style flood control per token."""
    body = await read_object(request)
    rate = None if body.get("rate_per_second") is None else int_field(body, "rate_per_second")
    try:
        sandbox_of(request).flood.set_rate(rate)
    except ValueError as error:
        raise ControlError(str(error)) from None
    return reply()
