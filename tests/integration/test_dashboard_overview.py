"""The dashboard's overview over a real embedded queue: figures and alarm states, the JSON the
page polls, the error banner when the queue cannot be read, the workers' bot state, and one
stats call per refresh interval however many clients poll."""

from __future__ import annotations

import asyncio
import re

from botqueue.logs import register_secret
from botqueue.service import Unavailable
from botqueue.transports import OutgoingMessage, SqliteTransport
from botqueue.transports.sqs import SqsTransport
from botqueue.transports.sqs_client import SqsClientConfig
from tests.integration.sqs_servers import CREDENTIALS, REGION, free_port
from tests.integration.test_dashboard_support import (
    CountingTransport,
    FakePause,
    browser,
    dead_letter,
    element,
    failure,
    new_metrics,
    operation,
    page,
    serving,
    state_of,
    text_of,
    worker_metrics,
)

LONG = 600.0  # a refresh interval no test outlives: only the first poll happens by itself


async def test_the_overview_shows_the_queue_figures_and_their_alarm_states(
    sqlite_transport: SqliteTransport,
) -> None:
    await dead_letter(
        sqlite_transport, [(operation("VERIFY_PERMISSIONS", "-1001"), failure("permanent"))]
    )
    await sqlite_transport.send_batch(
        [
            OutgoingMessage(operation("VERIFY_PERMISSIONS", f"-{i}"), f"v{i}", f"v{i}")
            for i in range(3)
        ]
    )
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        html = await page(session, served.url + "/")
    assert text_of(html, "visible") == "3"
    assert text_of(html, "in-flight") == "0"
    assert text_of(html, "dead-letters") == "1"
    assert re.fullmatch(r"\d+ s", text_of(html, "oldest-age"))
    assert state_of(html, "visible") == "ok"
    assert state_of(html, "dead-letters") == "alarm"  # DLQ > 0
    assert state_of(html, "oldest-age") == "ok"
    assert "hidden" in element(html, "error-banner")
    assert 'data-points="1"' in element(html, "chart-depth")
    assert text_of(html, "bot-state") == "unknown"  # no workers given


async def test_depth_over_a_thousand_is_an_alarm(sqlite_transport: SqliteTransport) -> None:
    for start in range(0, 1001, 10):
        await sqlite_transport.send_batch(
            [OutgoingMessage("{}", f"g{i}", f"d{i}") for i in range(start, min(start + 10, 1001))]
        )
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        html = await page(session, served.url + "/")
        async with session.get(served.url + "/api/overview") as response:
            data = await response.json()
    assert text_of(html, "visible") == "1,001"
    assert state_of(html, "visible") == "alarm"
    assert state_of(html, "dead-letters") == "ok"
    assert data["alarms"] == {
        "visible": True,
        "in_flight": False,
        "dead_letters": False,
        "oldest_age": False,
    }


async def test_api_overview_has_stats_history_and_rates(sqlite_transport: SqliteTransport) -> None:
    await sqlite_transport.send_batch([OutgoingMessage("{}", f"g{i}", f"d{i}") for i in range(4)])
    async with serving(sqlite_transport, refresh=0.05) as served, browser() as session:
        await served.state.poller.wait_polls(1)
        # Two messages leave the queue between polls: the depth fall gives the rate.
        taken = await sqlite_transport.receive(2, wait_seconds=0)
        await sqlite_transport.delete_batch([m.receipt for m in taken])
        polls = served.state.poller.polls
        # The background task's own polls, one per interval (bounded by the test timeout).
        await served.state.poller.wait_polls(polls + 2)
        async with session.get(served.url + "/api/overview") as response:
            assert response.status == 200
            data = await response.json()
    assert set(data) >= {"stats", "alarms", "history", "bot", "error"}
    assert data["stats"]["visible"] == 2
    assert data["error"] is None
    assert data["ops_source"] == "queue depth"
    depths = [point[1] for point in data["history"]]
    assert depths[0] == 4 and depths[-1] == 2
    rates = [point[2] for point in data["history"][1:]]
    assert any(rate > 0 for rate in rates)
    assert data["history"][0][2] is None  # no rate before a second poll


async def test_many_clients_cost_one_stats_call_per_interval(
    sqlite_transport: SqliteTransport,
) -> None:
    counting = CountingTransport(sqlite_transport)
    async with serving(counting, refresh=LONG) as served, browser() as session:

        async def poll() -> int:
            async with session.get(served.url + "/api/overview") as response:
                await response.json()
                return response.status

        statuses = await asyncio.gather(*(poll() for _ in range(50)))
        await page(session, served.url + "/")
        assert statuses == [200] * 50
        assert counting.stats_calls == 1
        # Each further interval adds exactly one call, whatever the clients do.
        await served.state.poller.poll_once()
        await asyncio.gather(*(poll() for _ in range(50)))
        assert counting.stats_calls == 2


async def test_an_unreachable_queue_shows_the_banner_and_the_page_keeps_working(
    sqlite_transport: SqliteTransport,
) -> None:
    secret = "123456:AAsecret-bot-token-value"
    register_secret(secret)
    counting = CountingTransport(sqlite_transport)
    counting.failing = f"SQS endpoint refused the connection (token {secret})\nsecond line"
    async with serving(counting, refresh=LONG) as served, browser() as session:
        html = await page(session, served.url + "/")
        banner = element(html, "error-banner")
        assert "hidden" not in banner
        assert "TransportError: SQS endpoint refused the connection" in banner
        assert secret not in html and "second line" not in html
        async with session.get(served.url + "/api/overview") as response:
            assert response.status == 200
            data = await response.json()
        assert data["error"].startswith("TransportError: ")
        assert secret not in data["error"]
        dlq_page = await page(session, served.url + "/dead-letters")
        assert "TransportError" in element(dlq_page, "error-banner")
        # The queue comes back: the next poll clears the error.
        counting.failing = None
        await served.state.poller.poll_once()
        async with session.get(served.url + "/api/overview") as response:
            data = await response.json()
        html = await page(session, served.url + "/")
    assert data["error"] is None
    assert data["stats"]["visible"] == 0
    assert "hidden" in element(html, "error-banner")


async def test_bot_state_and_rates_come_from_the_workers_metrics(
    sqlite_transport: SqliteTransport,
) -> None:
    pause = FakePause()
    metrics = new_metrics()
    async with (
        worker_metrics(pause, metrics) as metrics_url,
        serving(sqlite_transport, refresh=LONG, metrics_urls=[metrics_url]) as served,
        browser() as session,
    ):
        html = await page(session, served.url + "/")
        assert text_of(html, "bot-state") == "running"
        pause.pause = Unavailable("flood", 30.0)
        for _ in range(6):
            metrics.observe_duration("INVITE_USER", "succeeded", 0.01)
        await served.state.poller.poll_once()
        html = await page(session, served.url + "/")
        assert text_of(html, "bot-state") == "paused (flood control)"
        pause.pause = Unavailable("telegram_unavailable")
        await served.state.poller.poll_once()
        async with session.get(served.url + "/api/overview") as response:
            data = await response.json()
    assert data["bot"] == "Telegram unavailable"
    assert data["ops_source"] == "workers"
    rates = [point[2] for point in data["history"]]
    assert rates[0] is None and rates[1] > 0  # six attempts between the first two polls
    assert {row["label"] for row in data["workers"]} >= {"received", "deleted"}


async def test_no_worker_answering_is_an_unknown_bot_state(
    sqlite_transport: SqliteTransport,
) -> None:
    async with (
        serving(
            sqlite_transport, refresh=LONG, metrics_urls=["http://127.0.0.1:9/metrics"]
        ) as served,
        browser() as session,
    ):
        html = await page(session, served.url + "/")
    assert text_of(html, "bot-state") == "unknown"


async def test_an_sqs_endpoint_that_refuses_connections_shows_the_banner() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    queue = f"{endpoint}/000000000000/gone.fifo"
    config = SqsClientConfig(REGION, endpoint, CREDENTIALS, max_attempts=1)
    transport = SqsTransport(queue, f"{endpoint}/000000000000/gone-dlq.fifo", client_config=config)
    try:
        async with serving(transport, refresh=LONG) as served, browser() as session:
            overview = await page(session, served.url + "/")
            letters = await page(session, served.url + "/dead-letters")
            async with session.get(served.url + "/api/overview") as response:
                data = await response.json()
    finally:
        await transport.aclose()
    assert "hidden" not in element(overview, "error-banner")
    assert text_of(overview, "visible") == "—"
    assert "hidden" not in element(letters, "error-banner")
    assert data["error"] and "\n" not in data["error"]
    assert data["error"].split(":")[0].endswith("Error")  # names the error's type
