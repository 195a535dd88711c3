"""/healthz and /readyz: they change state when the receive loop is stuck, the event loop is
blocked or the queue is unreachable, answer quickly, and `botqueue health` turns them into
exit codes."""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from botqueue import BotQueueConsumer
from botqueue.observability import HealthState, Metrics, ObservabilityServer
from botqueue.transports import QueueStats, ReceivedMessage, SqliteTransport
from tests.services import RecordingService

ROOT = Path(__file__).resolve().parents[2]


class ControlledTransport(SqliteTransport):
    """The embedded queue, with a receive that can be stuck and stats that can fail or hang."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.stuck = asyncio.Event()
        self.unstuck = asyncio.Event()
        self.stats_error: Exception | None = None
        self.stats_hang = False

    async def receive(
        self,
        max_messages: int = 10,
        *,
        wait_seconds: float = 20.0,
        visibility_timeout: float | None = None,
    ) -> list[ReceivedMessage]:
        if self.stuck.is_set():
            await self.unstuck.wait()  # a receive that ignores its own wait time
        return await super().receive(
            max_messages, wait_seconds=wait_seconds, visibility_timeout=visibility_timeout
        )

    async def stats(self) -> QueueStats:
        if self.stats_hang:
            await asyncio.Event().wait()
        if self.stats_error is not None:
            raise self.stats_error
        return await super().stats()


@dataclass
class Worker:
    """A consumer on a controlled transport, watched by a health server."""

    transport: ControlledTransport
    consumer: BotQueueConsumer
    health: HealthState
    server: ObservabilityServer
    http: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        async with self.http.get(self.server.url + path) as response:
            return response.status, await response.json()

    async def until(self, path: str, status: int, within: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + within
        while True:
            got, body = await self.get(path)
            if got == status or time.monotonic() > deadline:
                assert got == status, body
                return body
            await asyncio.sleep(0.05)


@pytest.fixture
async def worker(db_url: str) -> AsyncIterator[Worker]:
    transport = ControlledTransport(db_url)
    consumer = BotQueueConsumer(RecordingService(), transport, wait_time_seconds=0.05)
    health = HealthState(poll_bound=0.5, loop_bound=0.3, ready_cache=0.1, probe_timeout=0.3)
    health.start()
    health.attach(consumer, transport)
    metrics = Metrics()
    server = ObservabilityServer(health, metrics.registry, port=0)
    await asyncio.to_thread(server.start)
    await consumer.start()
    async with aiohttp.ClientSession() as http:
        yield Worker(transport, consumer, health, server, http)
    transport.unstuck.set()
    await consumer.stop()
    await transport.aclose()
    await health.aclose()
    await asyncio.to_thread(server.stop)


async def test_healthz_fails_while_the_receive_loop_is_stuck(worker: Worker) -> None:
    assert (await worker.get("/healthz"))[0] == 200
    worker.transport.stuck.set()
    body = await worker.until("/healthz", 503)
    assert "receive loop has not polled" in body["problems"][0]
    worker.transport.stuck.clear()
    worker.transport.unstuck.set()
    await worker.until("/healthz", 200)


async def test_healthz_fails_while_the_event_loop_is_blocked(worker: Worker) -> None:
    answers: list[int] = []

    def probe() -> None:
        time.sleep(0.6)  # by then the loop has been blocked longer than its 0.3 s bound
        try:
            with urllib.request.urlopen(worker.server.url + "/healthz", timeout=2) as response:
                answers.append(response.status)
        except urllib.error.HTTPError as error:
            answers.append(error.code)

    thread = threading.Thread(target=probe)
    thread.start()
    time.sleep(1.0)  # noqa: ASYNC251 (blocking the loop is the point of this test)
    thread.join()
    assert answers == [503]
    await worker.until("/healthz", 200)


async def test_readyz_needs_the_token_accepted_and_the_queue_reachable(worker: Worker) -> None:
    body = await worker.until("/readyz", 503)
    assert "token" in body["problems"][0]
    worker.health.service_started = True
    await worker.until("/readyz", 200)
    worker.transport.stats_error = ConnectionError("connection refused")
    body = await worker.until("/readyz", 503)
    assert body["problems"] == ["queue unreachable: ConnectionError: connection refused"]
    worker.transport.stats_error = None
    await worker.until("/readyz", 200)
    # A queue that does not answer at all: /readyz still answers at once, then says why.
    worker.transport.stats_hang = True
    started = time.monotonic()
    body = await worker.until("/readyz", 503)
    assert "queue" in body["problems"][0]
    assert time.monotonic() - started < 3
    worker.transport.stats_hang = False
    await worker.until("/readyz", 200)
    worker.health.stopping = True
    body = await worker.until("/readyz", 503)
    assert body["problems"] == ["shutting down"]
    assert (await worker.get("/healthz"))[0] == 200  # alive while shutting down


async def test_both_answer_in_well_under_100_ms(worker: Worker) -> None:
    worker.health.service_started = True
    for path in ("/healthz", "/readyz"):
        times = []
        for _ in range(20):
            started = time.perf_counter()
            status, _ = await worker.get(path)
            times.append(time.perf_counter() - started)
            assert status == 200
        assert statistics.median(times) < 0.1, (path, times)


async def test_metrics_are_served_beside_the_health_endpoints(worker: Worker) -> None:
    async with worker.http.get(worker.server.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "botqueue_messages_received_total" in await response.text()
    no_metrics = ObservabilityServer(worker.health, None, port=0)
    await asyncio.to_thread(no_metrics.start)
    async with worker.http.get(no_metrics.url + "/metrics") as response:
        assert response.status == 404
    await asyncio.to_thread(no_metrics.stop)


async def health_command(*args: str, **env: str) -> int:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botqueue",
        "health",
        *args,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await process.wait()


async def test_health_command_exit_codes(worker: Worker) -> None:
    url = worker.server.url
    assert await health_command("--url", f"{url}/healthz") == 0
    assert await health_command("--url", f"{url}/readyz") == 1  # token not accepted yet
    worker.health.service_started = True
    assert await health_command("--url", f"{url}/readyz") == 0
    port = url.rsplit(":", 1)[1]
    assert await health_command("--ready", BOTQUEUE_METRICS_PORT=port) == 0
    assert await health_command(BOTQUEUE_METRICS_PORT=port) == 0
    worker.transport.stuck.set()
    await worker.until("/healthz", 503)
    assert await health_command("--url", f"{url}/healthz") == 1
    assert await health_command("--url", "http://127.0.0.1:9/healthz") == 1  # nothing there
    assert await health_command() == 2  # neither --url nor a port: a usage error
