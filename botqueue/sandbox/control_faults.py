"""The control API's fault endpoints: injected errors, latency, hung calls, flood control."""

from __future__ import annotations

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


async def latency(request: web.Request) -> web.Response:
    """POST latency {method or "*", seconds}: delay answers (0 removes the delay)."""
    body = await read_object(request)
    seconds = body.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ControlError("seconds must be a number")
    try:
        sandbox_of(request).plan.set_latency(str(body.get("method") or "*"), float(seconds))
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


async def flood(request: web.Request) -> web.Response:
    """POST flood {rate_per_second: N | null}: Telegram-style flood control per token."""
    body = await read_object(request)
    rate = None if body.get("rate_per_second") is None else int_field(body, "rate_per_second")
    try:
        sandbox_of(request).flood.set_rate(rate)
    except ValueError as error:
        raise ControlError(str(error)) from None
    return reply()
