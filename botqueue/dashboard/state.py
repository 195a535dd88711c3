"""What the dashboard's handlers share, and how they render a page."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from ..transports.base import Transport
from .poller import OverviewPoller
from .security import SESSION, Guard

PAGE_SIZE = 1000
"""Rows shown on one page of the dead-letter table."""
LIST_LIMIT = 10_000
"""Most dead letters read for one page (the filters' choices and counts come from them)."""


@dataclass
class Dashboard:
    """The queue, the poller, the guard and the DLQ lock of one dashboard app."""

    transport: Transport
    poller: OverviewPoller
    guard: Guard
    page_size: int = PAGE_SIZE
    list_limit: int = LIST_LIMIT
    # One DLQ reader at a time: on SQS a listing holds the dead letters in flight, so two
    # at once would each see only part of them.
    dlq_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


DASHBOARD = web.AppKey("dashboard", Dashboard)


def render(
    request: web.Request, template: str, context: Mapping[str, Any], status: int = 200
) -> web.Response:
    """Render a page with what every page needs: the CSRF token, the flash and the error."""
    state = request.app[DASHBOARD]
    flash = state.guard.read_flash(request.query.get("flash"))
    page = {
        "csrf_token": state.guard.csrf_token(request[SESSION]),
        "flash": flash,
        "error": None,
        "refresh": state.poller.refresh,
        **context,
    }
    return aiohttp_jinja2.render_template(template, request, page, status=status)
