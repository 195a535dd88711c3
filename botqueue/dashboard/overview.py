"""``GET /`` (the overview page) and ``GET /api/overview`` (what its script polls), both
served from the poller's cached snapshot: neither calls the queue."""

from __future__ import annotations

import time

from aiohttp import web

from . import chart
from .state import DASHBOARD, render

FIRST_POLL_WAIT_SECONDS = 2.0
"""How long the first page of a freshly started dashboard waits for the first poll."""


def format_age(seconds: float | int | None) -> str:
    """An age as the page shows it: ``3 s``, ``4 min 12 s``, ``2 h 5 min``."""
    if seconds is None:
        return "—"
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def format_timestamp(epoch: float | None) -> str:
    """Unix time as ``HH:MM:SS UTC`` (what the page script writes too)."""
    if not epoch:
        return "—"
    return time.strftime("%H:%M:%S UTC", time.gmtime(epoch))


async def index(request: web.Request) -> web.Response:
    """The overview page, with the figures, alarm states and charts as of the last poll."""
    poller = request.app[DASHBOARD].poller
    await poller.wait_ready(FIRST_POLL_WAIT_SECONDS)
    snapshot = poller.snapshot()
    history = snapshot["history"]
    return render(
        request,
        "overview.html",
        {
            "page": "overview",
            "snapshot": snapshot,
            "stats": snapshot["stats"],
            "alarms": snapshot["alarms"],
            "error": snapshot["error"],
            "depth": chart.chart(history, 1),
            "rate": chart.chart(history, 2),
            "chart_width": chart.WIDTH,
            "chart_height": chart.HEIGHT,
            "has_workers": bool(poller.metrics_urls),
        },
    )


async def api(request: web.Request) -> web.Response:
    """The last poll's snapshot as JSON (stats, alarms, history, bot, error)."""
    poller = request.app[DASHBOARD].poller
    await poller.wait_ready(FIRST_POLL_WAIT_SECONDS)
    return web.json_response(poller.snapshot())
