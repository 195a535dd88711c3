"""Metrics: counts after a mixed run, Telegram observers, queue gauges refreshed in the
background (never per scrape), and names and labels that follow Prometheus conventions."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from botqueue.observability import MeteredTransport, Metrics, MetricsHooks, QueueGauges
from botqueue.operations import OPERATION_TYPES
from botqueue.telegram.limiter import FloodStats
from botqueue.transports import OutgoingMessage, QueueStats, SqliteTransport
from tests.obs_run import drain, fill


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)


def value(metrics: Metrics, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist)."""
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_a_mixed_run_is_counted(sqlite_transport: SqliteTransport) -> None:
    metrics = Metrics()
    await fill(sqlite_transport)
    consumer = await drain(sqlite_transport, [MetricsHooks(metrics)])
    metrics.track_in_flight(lambda: consumer.held)

    # 6 operations and 1 undecodable body, plus one more receive for each of the 3 retries.
    assert value(metrics, "botqueue_messages_received_total") == 10
    assert value(metrics, "botqueue_messages_deleted_total") == 7
    for op in OPERATION_TYPES:
        assert value(metrics, "botqueue_retries_total", operation=op) == 1
    dead = {
        (s.labels["operation"], s.labels["kind"]): s.value
        for family in metrics.registry.collect()
        if family.name == "botqueue_dead_letters"
        for s in family.samples
        if s.name.endswith("_total")
    }
    assert dead == {
        ("REMOVE_USER", "permanent"): 1,
        ("INVITE_USER", "exhausted"): 1,
        ("VERIFY_PERMISSIONS", "exhausted"): 1,
        ("unknown", "undecodable"): 1,
    }
    assert value(metrics, "botqueue_messages_sent_total", queue="dlq") == 4
    assert value(metrics, "botqueue_worker_in_flight_messages") == 0
    counts = {
        (op, outcome): value(
            metrics, "botqueue_operation_duration_seconds_count", operation=op, outcome=outcome
        )
        for op in OPERATION_TYPES
        for outcome in ("succeeded", "noop", "retried", "failed", "dead_lettered")
    }
    assert {key: n for key, n in counts.items() if n} == {
        ("INVITE_USER", "succeeded"): 1,
        ("INVITE_USER", "noop"): 1,
        ("INVITE_USER", "retried"): 1,
        ("INVITE_USER", "dead_lettered"): 1,
        ("REMOVE_USER", "retried"): 1,
        ("REMOVE_USER", "succeeded"): 1,
        ("REMOVE_USER", "failed"): 1,
        ("VERIFY_PERMISSIONS", "retried"): 1,
        ("VERIFY_PERMISSIONS", "dead_lettered"): 1,
    }


async def test_dropped_permanent_failures_are_timed_as_failed(
    sqlite_transport: SqliteTransport,
) -> None:
    metrics = Metrics()
    await fill(sqlite_transport)
    await drain(sqlite_transport, [MetricsHooks(metrics)], drop_permanent=True)
    assert (
        value(
            metrics,
            "botqueue_operation_duration_seconds_count",
            operation="REMOVE_USER",
            outcome="failed",
        )
        == 1
    )
    assert (
        value(metrics, "botqueue_dead_letters_total", operation="REMOVE_USER", kind="permanent")
        == 0
    )
    assert value(metrics, "botqueue_messages_deleted_total") == 7


def test_telegram_requests_and_flood_counters() -> None:
    metrics = Metrics()
    metrics.observe_request("getChatMember", "ok", 0.02)
    metrics.observe_request("getChatMember", "ok", 0.03)
    metrics.observe_request("sendMessage", "flood", 0.01)
    stats = FloodStats()
    metrics.track_flood(stats)
    stats.rate_limited, stats.paused_seconds, stats.handed_back = 2, 7.5, 1
    requests = "botqueue_telegram_requests_total"
    assert value(metrics, requests, method="getChatMember", status="ok") == 2
    assert value(metrics, requests, method="sendMessage", status="flood") == 1
    assert (
        value(metrics, "botqueue_telegram_request_duration_seconds_count", method="getChatMember")
        == 2
    )
    # Read at scrape time: later changes to the limiter's stats show at once.
    assert value(metrics, "botqueue_telegram_rate_limited_total") == 2
    assert value(metrics, "botqueue_telegram_paused_seconds_total") == 7.5
    assert value(metrics, "botqueue_telegram_handed_back_total") == 1
    stats.rate_limited = 3
    assert value(metrics, "botqueue_telegram_rate_limited_total") == 3


class CountingStats:
    """Wraps a transport's stats() to count the calls and fail on demand."""

    def __init__(self, transport: SqliteTransport) -> None:
        self.transport = transport
        self.calls = 0
        self.fail = False

    async def stats(self) -> QueueStats:
        self.calls += 1
        if self.fail:
            raise ConnectionError("queue unreachable")
        return await self.transport.stats()


async def test_queue_gauges_refresh_in_the_background_not_per_scrape(
    sqlite_transport: SqliteTransport,
) -> None:
    metrics = Metrics()
    await fill(sqlite_transport)
    counting = CountingStats(sqlite_transport)
    gauges = QueueGauges(metrics, counting, interval=0.2)  # type: ignore[arg-type]
    gauges.start()
    await asyncio.sleep(0.05)
    assert value(metrics, "botqueue_queue_visible_messages") == 7
    assert value(metrics, "botqueue_queue_oldest_message_age_seconds") >= 0
    assert value(metrics, "botqueue_dlq_messages") == 0
    calls = counting.calls
    for _ in range(50):
        generate_latest(metrics.registry)
    assert counting.calls == calls  # scrapes only read the gauges
    await asyncio.sleep(0.5)
    assert 2 <= counting.calls - calls <= 4  # about one call per interval
    counting.fail = True
    await asyncio.sleep(0.3)
    assert value(metrics, "botqueue_queue_stats_errors_total") >= 1
    assert value(metrics, "botqueue_queue_visible_messages") == 7  # the last known value stays
    await gauges.aclose()


async def test_metered_transport_counts_sends(sqlite_transport: SqliteTransport) -> None:
    metrics = Metrics()
    metered = MeteredTransport(sqlite_transport, metrics)
    await fill(metered)  # type: ignore[arg-type]
    await metered.send_batch([OutgoingMessage(body="x", group_id="g", deduplication_id="junk-1")])
    # Seven accepted; the repeated deduplication id is accepted too (SQS answers the first id).
    assert value(metrics, "botqueue_messages_sent_total", queue="main") == 8
    assert (await metered.stats()).visible == 7


async def test_names_and_labels_follow_conventions(sqlite_transport: SqliteTransport) -> None:
    metrics = Metrics()
    metrics.track_flood(FloodStats())
    metrics.observe_request("getChatMember", "chat_not_found", 0.1)
    await fill(sqlite_transport)
    await drain(sqlite_transport, [MetricsHooks(metrics)])
    text = generate_latest(metrics.registry).decode()
    allowed = {
        "operation": {*OPERATION_TYPES, "unknown"},
        "outcome": {"succeeded", "noop", "retried", "failed", "dead_lettered"},
        "kind": {"permanent", "exhausted", "undecodable"},
        "queue": {"main", "dlq", "outcomes"},
        "method": {"getChatMember"},
        "status": {"chat_not_found"},
        "le": None,
    }
    for family in text_string_to_metric_families(text):
        if family.name.startswith("process_"):
            continue
        assert family.name.startswith("botqueue_"), family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        for sample in family.samples:
            if family.type == "counter":
                assert sample.name.endswith(("_total", "_created")), sample.name
            for label, label_value in sample.labels.items():
                assert label in allowed, (sample.name, label)
                bounded = allowed[label]
                assert bounded is None or label_value in bounded, (sample.name, label_value)


def test_duration_histogram_buckets_are_cumulative() -> None:
    metrics = Metrics()
    for seconds in (0.003, 0.005, 0.02, 100.0):
        metrics.observe_duration("REMOVE_USER", "retried", seconds)
    labels = {"operation": "REMOVE_USER", "outcome": "retried"}
    bucket = "botqueue_operation_duration_seconds_bucket"

    def le(bound: str) -> float:
        return value(metrics, bucket, le=bound, **labels)

    # 0.005 falls in its own bucket (le is "less or equal"); 100 s only in +Inf.
    assert (le("0.005"), le("0.01"), le("0.025"), le("60.0"), le("+Inf")) == (2, 2, 3, 3, 4)
    assert value(metrics, "botqueue_operation_duration_seconds_count", **labels) == 4
    assert value(metrics, "botqueue_operation_duration_seconds_sum", **labels) == 100.028
