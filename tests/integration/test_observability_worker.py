"""A real worker process with --metrics-port: after a mixed run its /metrics shows each metric
with the expected counts, and with the Telegram service its request counts match what the
Bot API sandbox saw."""

from __future__ import annotations

import json
from pathlib import Path

from botqueue import BotQueueProducer
from botqueue.operations import InviteUser, RemoveUser, VerifyPermissions
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.transports import SqliteTransport
from tests.obs_run import EXPECTED_STATUS, fill
from tests.obs_services import INVITE_LINK

from .worker_process import WorkerProcess, sample, sum_by, until

PREMIUM, VIP, NO_BOT = "-1001000000001", "-1001000000002", "-1001000000003"


async def test_metrics_after_a_mixed_run(db_url: str, tmp_path: Path) -> None:
    async with SqliteTransport(db_url) as transport:
        await fill(transport)
    env = {
        "BOT_OPERATIONS_QUEUE_URL": db_url,
        "BOT_OPERATIONS_OUTCOMES_URL": db_url,  # its own queue in the same file
        "BOTQUEUE_STATS_INTERVAL": "0.2",
        "BOTQUEUE_OUTCOME_HOOK": "tests.obs_services:file_hook",
        "BOTQUEUE_TEST_OUTCOMES": str(tmp_path / "outcomes.jsonl"),
    }
    args = ("--service", "tests.obs_services:ScriptedService", "--metrics-port", "0")
    async with WorkerProcess(env, *args) as worker:
        await worker.listening()

        async def settled() -> bool:
            m = await worker.scrape()
            return (
                sample(m, "botqueue_messages_deleted_total") == 7
                and sample(m, "botqueue_dlq_messages") == 4
                and sample(m, "botqueue_queue_visible_messages") == 0
                and sample(m, "botqueue_queue_in_flight_messages") == 0
            )

        await until(settled)
        m = await worker.scrape()
        assert (await worker.get("/healthz"))[0] == 200
        assert (await worker.get("/readyz"))[0] == 200
        assert await worker.stop() == 0

    # The spec's six.
    assert sample(m, "botqueue_queue_visible_messages") == 0
    assert sample(m, "botqueue_queue_oldest_message_age_seconds") == 0
    assert sample(m, "botqueue_dlq_messages") == 4
    assert sample(m, "botqueue_messages_received_total") == 10  # 7 + 3 retried receives
    assert sample(m, "botqueue_messages_deleted_total") == 7
    assert sample(m, "botqueue_messages_sent_total", queue="dlq") == 4
    assert sample(m, "botqueue_messages_sent_total", queue="outcomes") == 7
    # And the rest.
    assert sum_by(m, "botqueue_retries_total", "operation") == {
        "INVITE_USER": 1,
        "REMOVE_USER": 1,
        "VERIFY_PERMISSIONS": 1,
    }
    assert sum_by(m, "botqueue_dead_letters_total", "kind") == {
        "permanent": 1,
        "exhausted": 2,
        "undecodable": 1,
    }
    assert sum_by(m, "botqueue_operation_duration_seconds_count", "outcome") == {
        "succeeded": 2,
        "noop": 1,
        "retried": 3,
        "failed": 1,
        "dead_lettered": 2,
    }
    assert sample(m, "botqueue_worker_in_flight_messages") == 0
    assert sample(m, "botqueue_outcome_hook_errors_total") == 0
    assert sample(m, "botqueue_queue_stats_updated_timestamp_seconds") > 0
    hooked = [json.loads(line) for line in (tmp_path / "outcomes.jsonl").read_text().splitlines()]
    statuses = {
        (e["operation"] or {}).get("subscriptionId")
        or (e["operation"] or {}).get("listingId")
        or "junk": e["status"]
        for e in hooked
    }
    assert statuses == {**EXPECTED_STATUS, "junk": "dead_lettered"}
    assert next(e for e in hooked if e["status"] == "succeeded")["detail"]["inviteLink"] == (
        INVITE_LINK
    )


async def test_telegram_metrics_match_the_sandbox(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    ops = [
        InviteUser(user_id=1004, channel_id=PREMIUM, subscription_id="s1", order_id="o1"),
        InviteUser(user_id=1001, channel_id=PREMIUM, subscription_id="s2", order_id="o2"),
        RemoveUser(user_id=1002, channel_id=PREMIUM, subscription_id="s3", reason="expiry"),
        RemoveUser(user_id=1001, channel_id=VIP, subscription_id="s4", reason="refund"),
        VerifyPermissions(channel_id=PREMIUM, listing_id="l1"),
        VerifyPermissions(channel_id=NO_BOT, listing_id="l2"),
    ]
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue_many(ops)
    # One 429 (waited out in place: shorter than the 5 s hold) and one server error (retried).
    await control.inject_fault(
        "getChatMember", 429, "Too Many Requests: retry after 1", retry_after=1
    )
    await control.inject_fault("sendMessage", 500, "Internal Server Error")
    env = {
        "BOT_OPERATIONS_QUEUE_URL": db_url,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "BOTQUEUE_STATS_INTERVAL": "0.2",
    }
    async with WorkerProcess(env, "--metrics-port", "0") as worker:
        await worker.listening()

        async def settled() -> bool:
            m = await worker.scrape()
            return sample(m, "botqueue_messages_deleted_total") == len(ops)

        await until(settled)
        m = await worker.scrape()
        seen = await control.requests()
        assert await worker.stop() == 0
    by_method = sum_by(m, "botqueue_telegram_requests_total", "method")
    assert by_method == {name: float(n) for name, n in seen["methods"].items()}
    statuses = sum_by(m, "botqueue_telegram_requests_total", "status")
    assert statuses["flood"] == 1 and statuses["server_or_network"] == 1
    assert sample(m, "botqueue_telegram_rate_limited_total") == seen["rate_limited"] == 1
    assert sample(m, "botqueue_telegram_paused_seconds_total") >= 0.9
    assert sample(m, "botqueue_telegram_handed_back_total") == 0
    assert sum_by(m, "botqueue_telegram_request_duration_seconds_count", "method") == by_method
    # The removal from VIP (no right to restrict) failed for good; the rest succeeded.
    assert sum_by(m, "botqueue_dead_letters_total", "kind") == {"permanent": 1}
    assert sum_by(m, "botqueue_retries_total", "operation")["INVITE_USER"] == 1
