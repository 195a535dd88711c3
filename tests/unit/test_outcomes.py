"""Outcome events: one per finished operation on an embedded outcomes queue, with the right
status and detail; hooks that raise are logged and never fail an operation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from botqueue.config import Settings
from botqueue.errors import ConfigurationError
from botqueue.observability import (
    Metrics,
    OutcomeEvent,
    OutcomeHookRunner,
    OutcomeHooks,
    OutcomePublisher,
    load_outcome_hook,
)
from botqueue.observability.setup import outcomes_url
from botqueue.transports import OutgoingMessage, SendResult, SqliteTransport
from tests.obs_run import CHANNEL, EXPECTED_STATUS, UNDECODABLE, drain, fill
from tests.obs_services import INVITE_LINK, MISSING, raising_hook


@pytest.fixture(autouse=True)
def _no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)


@pytest.fixture
def events_url(tmp_path: Path) -> str:
    """An outcomes queue in the main queue's file, as a bare outcomes URL gives it."""
    return outcomes_url(f"sqlite:///{tmp_path / 'queue.db'}", Settings())


async def read_events(url: str) -> list[dict[str, Any]]:
    """Every event on the outcomes queue, in order."""
    events = []
    async with SqliteTransport(url) as transport:
        while batch := await transport.receive(10, wait_seconds=0):
            events += [json.loads(m.body) for m in batch]
            await transport.delete_batch([m.receipt for m in batch])
    return events


def by_script(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Events by the script name of their operation (the undecodable one under "junk")."""
    found = {}
    for event in events:
        op = event["operation"] or {}
        found[op.get("subscriptionId") or op.get("listingId") or "junk"] = event
    return found


async def test_one_event_per_operation_with_status_and_detail(
    sqlite_transport: SqliteTransport, events_url: str
) -> None:
    assert events_url.endswith("?queue=bot-operations-outcomes")
    metrics = Metrics()
    publisher = OutcomePublisher(SqliteTransport(events_url), metrics)
    publisher.start()
    ids = await fill(sqlite_transport)
    await drain(sqlite_transport, [OutcomeHooks([publisher])])
    await publisher.aclose()  # flushes what is still queued
    events = await read_events(events_url)
    assert len(events) == 7 and publisher.sent == 7
    assert (
        metrics.registry.get_sample_value("botqueue_messages_sent_total", {"queue": "outcomes"})
        == 7
    )
    found = by_script(events)
    assert {name: found[name]["status"] for name in EXPECTED_STATUS} == EXPECTED_STATUS
    ok, perm, dead = found["ok-1"], found["perm-1"], found["dead-1"]
    assert ok["messageId"] == ids[0] and ok["operationType"] == "INVITE_USER"
    assert ok["operation"]["channelId"] == CHANNEL and ok["operation"]["userId"] == 11
    assert ok["detail"] == {"inviteLink": INVITE_LINK} and ok["error"] is None
    assert ok["attempts"] == 1 and ok["firstAttemptAt"] <= ok["finishedAt"]
    assert found["noop-1"]["detail"] == {"memberStatus": "member"}
    assert found["flaky-1"]["attempts"] == 2
    assert perm["detail"] == {"reason": "not_enough_rights", "missingRights": MISSING}
    assert perm["error"].startswith("Bad Request: not enough rights")
    assert perm["failureKind"] == "permanent" and perm["errorType"] == "PermanentError"
    assert dead["failureKind"] == "exhausted" and dead["attempts"] == 2
    assert found["boom-1"]["errorType"] == "RuntimeError"
    junk = found["junk"]
    assert junk["status"] == "dead_lettered" and junk["failureKind"] == "undecodable"
    assert junk["operation"] is None and junk["operationType"] is None
    assert UNDECODABLE not in json.dumps(events)
    # Events keep their operation's FIFO group, so one user's outcomes stay in order.
    assert OutcomeEvent.model_validate(ok).to_message().group_id == f"{CHANNEL}:11"


async def test_dropped_permanent_failure_is_failed_without_a_dlq_kind(
    sqlite_transport: SqliteTransport,
) -> None:
    seen: list[OutcomeEvent] = []
    await fill(sqlite_transport)
    await drain(sqlite_transport, [OutcomeHooks([seen.append])], drop_permanent=True)
    perm = next(e for e in seen if e.operation and e.operation["subscriptionId"] == "perm-1")
    assert (perm.status, perm.failure_kind) == ("failed", None)
    assert perm.detail["missingRights"] == MISSING
    assert len(seen) == 7


async def test_raising_hooks_do_not_fail_the_operation(
    sqlite_transport: SqliteTransport, events_url: str
) -> None:
    async def async_raising(event: OutcomeEvent) -> None:
        raise RuntimeError("async hook broke")

    def broken_sink(event: OutcomeEvent) -> None:
        raise KeyError("sink broke")

    metrics = Metrics()
    publisher = OutcomePublisher(SqliteTransport(events_url))
    publisher.start()
    sync_runner = OutcomeHookRunner(raising_hook, metrics)
    async_runner = OutcomeHookRunner(async_raising, metrics)
    sinks = [sync_runner, async_runner, broken_sink, publisher]
    with capture_logs() as logs:
        await fill(sqlite_transport)
        consumer = await drain(sqlite_transport, [OutcomeHooks(sinks)])
        await async_runner.aclose()
    await publisher.aclose()
    # Every operation finished as it would have without hooks, and was settled.
    stats = await sqlite_transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 4)
    assert consumer.held == 0
    assert len(await read_events(events_url)) == 7  # the other sinks still ran
    raised = [line for line in logs if line["event"] == "outcome hook raised"]
    assert len(raised) == 14 and all(line["log_level"] == "error" for line in raised)
    assert {line["errorType"] for line in raised} == {"ValueError", "RuntimeError"}
    assert all("messageId" in line and "attempt" in line for line in raised)
    assert metrics.registry.get_sample_value("botqueue_outcome_hook_errors_total") == 14
    sink_errors = [line for line in logs if line["event"] == "outcome sink raised"]
    assert len(sink_errors) == 7


class FlakyOutcomes(SqliteTransport):
    """An outcomes queue whose first ``failures`` sends fail."""

    def __init__(self, url: str, failures: int) -> None:
        super().__init__(url)
        self.failures = failures

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("outcomes queue down")
        return await super().send_batch(messages)


async def test_publisher_retries_when_the_outcomes_queue_is_down(
    sqlite_transport: SqliteTransport, events_url: str
) -> None:
    publisher = OutcomePublisher(FlakyOutcomes(events_url, failures=2), retry_base=0.01)
    publisher.start()
    await fill(sqlite_transport)
    with capture_logs() as logs:
        await drain(sqlite_transport, [OutcomeHooks([publisher])])
        await publisher.aclose()
    assert [line["event"] for line in logs].count("could not publish outcomes") == 2
    events = await read_events(events_url)
    assert sorted(by_script(events)) == sorted([*EXPECTED_STATUS, "junk"])


def test_outcome_hook_loading() -> None:
    assert load_outcome_hook("tests.obs_services:raising_hook") is raising_hook
    for spec, problem in [
        ("no_colon", "module:function"),
        ("tests.nosuchmodule:hook", "cannot load"),
        ("tests.obs_services:nothing", "cannot load"),
        ("tests.obs_services:INVITE_LINK", "not callable"),
    ]:
        with pytest.raises(ConfigurationError, match=problem):
            load_outcome_hook(spec)


def test_outcomes_url_must_not_be_the_main_queue_or_dlq(tmp_path: Path) -> None:
    main = f"sqlite:///{tmp_path}/q.db"
    settings = Settings(bot_operations_queue_url=main)
    assert outcomes_url(main, settings) == f"{main}?queue=bot-operations-outcomes"
    assert outcomes_url(f"{main}?synchronous=normal", settings).endswith(
        "?synchronous=normal&queue=bot-operations-outcomes"
    )
    for same in [f"{main}?queue=bot-operations", f"{main}?queue=bot-operations-dlq"]:
        with pytest.raises(ConfigurationError, match="queue of its own"):
            outcomes_url(same, settings)
    sqs = "https://sqs.eu-west-1.amazonaws.com/123456789012/outcomes.fifo"
    assert outcomes_url(sqs, settings) == sqs
