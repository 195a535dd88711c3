"""What the dashboard tests share (no tests here): a dashboard served on a free loopback port,
a browser-like client that keeps cookies, dead letters to look at, and a transport wrapper
that counts (or fails) the stats calls."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest

from botqueue.dashboard import create_app
from botqueue.dashboard.state import DASHBOARD, Dashboard
from botqueue.errors import TransportError
from botqueue.observability.bot_metrics import BotStateCollector
from botqueue.observability.metrics import Metrics
from botqueue.service import Unavailable
from botqueue.transports import OutgoingMessage, Transport
from botqueue.transports.base import QueueStats


@dataclass
class Served:
    """A running dashboard: its base URL and its shared state."""

    url: str
    state: Dashboard


async def _start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    assert runner.addresses, "the server did not bind"
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@asynccontextmanager
async def serving(transport: Transport, **options: Any) -> AsyncIterator[Served]:
    """Serve a dashboard over ``transport`` on a free loopback port."""
    app = create_app(transport, **options)
    runner, url = await _start(app)
    try:
        yield Served(url, app[DASHBOARD])
    finally:
        await runner.cleanup()


def browser() -> aiohttp.ClientSession:
    """A client that keeps cookies for 127.0.0.1 as a browser does (aiohttp's default jar
    refuses cookies of IP addresses)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ROW_IDS = re.compile(r'<tr class="dead-letter" data-message-id="([^"]+)"')


async def page(session: aiohttp.ClientSession, url: str) -> str:
    """GET a page that must answer 200; its HTML."""
    async with session.get(url) as response:
        text = await response.text()
        assert response.status == 200, text
        return text


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = CSRF.search(html)
    assert found, "no csrf_token in the page"
    return found.group(1)


def element(html: str, element_id: str) -> str:
    """The start tag and text of the element with this id (up to its first closing tag)."""
    found = re.search(rf'<[a-z]+ [^>]*id="{re.escape(element_id)}"[^>]*>[^<]*', html)
    assert found, f"no #{element_id} in the page"
    return found.group(0)


def text_of(html: str, element_id: str) -> str:
    """The text directly inside the element with this id."""
    return element(html, element_id).partition(">")[2].strip()


def state_of(html: str, element_id: str) -> str:
    """The element's data-state."""
    found = re.search(r'data-state="([a-z]+)"', element(html, element_id))
    assert found
    return found.group(1)


def flash_of(html: str) -> str:
    """The text of the #flash message."""
    return text_of(html, "flash")


def operation(kind: str, channel: str, user: int | None = None) -> str:
    """An operation's wire body."""
    body: dict[str, Any] = {"operationType": kind, "channelId": channel}
    if user is not None:
        body["userId"] = user
    return json.dumps(body)


def failure(kind: str, reason: str | None = None, **detail: Any) -> dict[str, Any]:
    """A failure record as the worker writes it."""
    record: dict[str, Any] = {
        "error": f"failed: {reason or kind}",
        "kind": kind,
        "attempts": 3,
        "firstAttemptAt": "2026-12-01T10:00:00.000Z",
        "lastAttemptAt": "2026-12-01T10:00:07.000Z",
        "originalMessageId": "orig",
    }
    if reason or detail:
        record["detail"] = {"reason": reason, **detail}
    return record


async def dead_letter(
    transport: Transport, letters: Sequence[tuple[str, Mapping[str, Any]]]
) -> list[str]:
    """Send each (body, failure) on its own group and dead-letter it, in the order given;
    the dead letters' ids (the DLQ gives them ids of their own)."""
    before = {letter.message_id for letter in await transport.dlq_list()}
    run = uuid.uuid4().hex  # deduplication ids of their own: a second call must not be dropped
    for start in range(0, len(letters), 10):
        await transport.send_batch(
            [
                OutgoingMessage(body, f"g{start + i}", f"{run}-{start + i}")
                for i, (body, _) in enumerate(letters[start : start + 10])
            ]
        )
    by_group: dict[str, Any] = {}
    while len(by_group) < len(letters):
        received = await transport.receive(10, wait_seconds=1)
        assert received, "sent messages did not come back"
        for message in received:
            by_group[message.group_id] = message
    for i, (_, record) in enumerate(letters):
        await transport.dead_letter(by_group[f"g{i}"], record)
    listed = await transport.dlq_list()
    ids = [letter.message_id for letter in listed if letter.message_id not in before]
    assert len(ids) == len(letters)
    return ids


class CountingTransport:
    """A transport that counts its stats calls and can be told to fail them."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.stats_calls = 0
        self.failing: str | None = None

    async def stats(self) -> QueueStats:
        """Count the call; raise TransportError while ``failing`` is set."""
        self.stats_calls += 1
        if self.failing is not None:
            raise TransportError(self.failing)
        return await self.inner.stats()

    async def dlq_list(self, limit: int | None = None) -> Any:
        """Fail like stats while ``failing`` is set."""
        if self.failing is not None:
            raise TransportError(self.failing)
        return await self.inner.dlq_list(limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class FakePause:
    """A bot state a test sets by hand."""

    def __init__(self) -> None:
        self.pause: Unavailable | None = None

    def unavailable(self) -> Unavailable | None:
        """The pause set by the test."""
        return self.pause


@asynccontextmanager
async def worker_metrics(pause: FakePause, metrics: Metrics) -> AsyncIterator[str]:
    """A /metrics endpoint with the worker's real collectors; yields its URL."""
    registry = metrics.registry
    registry.register(BotStateCollector(pause, None))  # type: ignore[arg-type]

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    runner, url = await _start(app)
    try:
        yield f"{url}/metrics"
    finally:
        await runner.cleanup()


def new_metrics() -> Metrics:
    """Worker metrics on a registry of their own."""
    return Metrics(CollectorRegistry())
