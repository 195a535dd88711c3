"""The dead-letter pages: the table with its filters, one letter's detail, and redrive and
purge, each behind a confirmation page and reported by a flash message after a 303.

Viewing only lists (``transport.dlq_list``), which consumes and reorders nothing; a queue that
cannot be read shows the error banner, not a 500.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from aiohttp import web

from ..transports.base import DeadLetter
from .letters import Filters, choices, detail_of, find, plural, row_of
from .poller import describe
from .state import DASHBOARD, Dashboard, render

DLQ_TIMEOUT_SECONDS = 60.0
"""Longest a listing or an action may take before it is reported as failed."""
ACTIONS = ("redrive-one", "redrive-selected", "redrive-all", "purge")


async def _list(state: Dashboard) -> tuple[list[DeadLetter], str | None]:
    try:
        async with state.dlq_lock, asyncio.timeout(DLQ_TIMEOUT_SECONDS):
            return await state.transport.dlq_list(state.list_limit), None
    except Exception as error:  # the banner names it; the page still renders
        return [], describe(error)


async def table(request: web.Request) -> web.Response:
    """``GET /dead-letters?kind=&reason=&type=``: the filtered table of dead letters."""
    state = request.app[DASHBOARD]
    filters = Filters.from_query(request.query)
    letters, error = await _list(state)
    rows = [row_of(letter) for letter in letters]
    matching = [row for row in rows if filters.matches(row)]
    return render(
        request,
        "dead_letters.html",
        {
            "page": "dead-letters",
            "rows": matching[: state.page_size],
            "total": len(rows),
            "matching": len(matching),
            "page_size": state.page_size,
            "capped": len(letters) >= state.list_limit,
            "choices": choices(rows),
            "filters": filters,
            "error": error,
        },
    )


async def detail(request: web.Request) -> web.Response:
    """``GET /dead-letters/{id}``: one dead letter's body and failure record."""
    state = request.app[DASHBOARD]
    message_id = request.match_info["message_id"]
    letters, error = await _list(state)
    letter = find(letters, message_id)
    context = {
        "page": "dead-letters",
        "message_id": message_id,
        "letter": detail_of(letter) if letter is not None else None,
        "error": error,
    }
    status = 404 if letter is None and error is None else 200
    return render(request, "detail.html", context, status=status)


def _ids(values: list[str]) -> list[str]:
    # In the order given, each once.
    return list(dict.fromkeys(value for value in values if value))


def _back(state: Dashboard, text: str, level: str = "info") -> web.HTTPSeeOther:
    return web.HTTPSeeOther(
        "/dead-letters?" + urlencode({"flash": state.guard.sign_flash(text, level)})
    )


async def confirm(request: web.Request) -> web.Response:
    """``POST /dead-letters/confirm``: say what an action would do; nothing is changed."""
    state = request.app[DASHBOARD]
    form = await request.post()
    action = str(form.get("action", ""))
    if action not in ACTIONS:
        raise web.HTTPBadRequest(text="botqueue dashboard: unknown action\n")
    ids = _ids([str(value) for value in form.getall("message_id", [])])
    if action in ("redrive-one", "redrive-selected") and not ids:
        raise _back(state, "No dead letter selected: nothing was done.")
    stats = state.poller.stats
    context = {
        "page": "dead-letters",
        "action": action,
        "ids": ids if action in ("redrive-one", "redrive-selected") else [],
        "counted": stats.dead_letters if stats is not None else None,
        "cancel": f"/dead-letters/{ids[0]}" if action == "redrive-one" else "/dead-letters",
    }
    return render(request, "confirm.html", context)


async def redrive(request: web.Request) -> web.Response:
    """``POST /dead-letters/redrive`` (confirmed): move the chosen dead letters, or all."""
    state = request.app[DASHBOARD]
    form = await request.post()
    everything = form.get("scope") == "all"
    ids = None if everything else _ids([str(v) for v in form.getall("message_id", [])])
    if ids is not None and not ids:
        raise _back(state, "No dead letter selected: nothing was done.")
    try:
        async with state.dlq_lock, asyncio.timeout(DLQ_TIMEOUT_SECONDS):
            moved = await state.transport.dlq_redrive(ids)
    except Exception as error:
        raise _back(state, f"Redrive failed: {describe(error)}", "error") from None
    if ids is None or moved == len(ids):
        raise _back(state, f"Redrove {plural(moved)}.")
    raise _back(
        state,
        f"Redrove {plural(moved)} of {len(ids):,} selected; the others were no longer on the DLQ.",
        "error",
    )


async def purge(request: web.Request) -> web.Response:
    """``POST /dead-letters/purge`` (confirmed): delete every dead letter."""
    state = request.app[DASHBOARD]
    try:
        async with state.dlq_lock, asyncio.timeout(DLQ_TIMEOUT_SECONDS):
            deleted = await state.transport.dlq_purge()
    except Exception as error:
        raise _back(state, f"Purge failed: {describe(error)}", "error") from None
    raise _back(state, f"Purged {plural(deleted)}.")
