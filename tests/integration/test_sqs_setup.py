"""``botqueue setup`` on SQS and the worker's start-up checks of the queue's attributes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import click
import pytest
import structlog
from click.testing import CliRunner

from botqueue.cli.queue import setup
from botqueue.errors import ConfigurationError
from botqueue.transports import open_transport
from botqueue.transports.sqs import SqsTransport
from botqueue.transports.sqs_checks import check_at_start
from botqueue.transports.sqs_client import create_client
from botqueue.transports.sqs_setup import setup_queues
from tests.integration.sqs_faults import RequestCounter
from tests.integration.sqs_servers import SqsServer


def names() -> tuple[str, str]:
    base = f"s-{uuid.uuid4().hex[:10]}"
    return f"{base}.fifo", f"{base}-dlq.fifo"


def run_setup_cli(server: SqsServer, *args: str) -> Any:
    group = click.Group("botqueue")
    group.add_command(setup)
    env = {**server.env(), "BOTQUEUE_LOG_LEVEL": "warning"}
    return CliRunner().invoke(group, ["setup", *args], env=env)


def attributes(server: SqsServer, url: str) -> dict[str, str]:
    found: dict[str, str] = server.boto3_client().get_queue_attributes(
        QueueUrl=url, AttributeNames=["All"]
    )["Attributes"]
    return found


def test_setup_creates_both_queues_as_the_spec_configures_them(sqs_server: SqsServer) -> None:
    queue, dlq = names()
    result = run_setup_cli(sqs_server, "--queue-name", queue, "--dlq-name", dlq)
    assert result.exit_code == 0, result.output
    assert f"created {dlq}" in result.output and f"created {queue}" in result.output
    urls = dict(line.split("=", 1) for line in result.output.splitlines() if "_URL=" in line)
    main = attributes(sqs_server, urls["BOT_OPERATIONS_QUEUE_URL"])
    dead = attributes(sqs_server, urls["BOT_OPERATIONS_DLQ_URL"])
    for found, retention in ((main, 4 * 86400), (dead, 14 * 86400)):
        assert found["FifoQueue"] == "true"
        assert found["ContentBasedDeduplication"] == "true"
        assert found["MessageRetentionPeriod"] == str(retention)
        assert found["VisibilityTimeout"] == "30"
        assert found["ReceiveMessageWaitTimeSeconds"] == "20"
    policy = json.loads(main["RedrivePolicy"])
    assert policy["deadLetterTargetArn"] == dead["QueueArn"]
    assert int(policy["maxReceiveCount"]) == 25


async def test_rerunning_setup_changes_nothing(sqs_server: SqsServer) -> None:
    queue, dlq = names()
    async with create_client(sqs_server.client_config()) as client:
        first = await setup_queues(client, queue_name=queue, dlq_name=dlq)
        counter = RequestCounter().attach(client)
        second = await setup_queues(client, queue_name=queue, dlq_name=dlq)
    assert first.created == [dlq, queue]
    assert (second.created, second.drift, second.fixed) == ([], [], [])
    assert "queues exist as configured; nothing changed" in second.lines()
    assert set(counter.counts) == {"GetQueueUrl", "GetQueueAttributes"}
    assert (second.queue_url, second.dlq_url) == (first.queue_url, first.dlq_url)


def test_setup_reports_drift_and_fixes_it_only_when_asked(sqs_server: SqsServer) -> None:
    queue, dlq = names()
    assert run_setup_cli(sqs_server, "--queue-name", queue, "--dlq-name", dlq).exit_code == 0
    client = sqs_server.boto3_client()
    url = client.get_queue_url(QueueName=queue)["QueueUrl"]
    dlq_arn = client.get_queue_attributes(
        QueueUrl=client.get_queue_url(QueueName=dlq)["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    drifted = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})
    client.set_queue_attributes(
        QueueUrl=url, Attributes={"VisibilityTimeout": "60", "RedrivePolicy": drifted}
    )

    report = run_setup_cli(sqs_server, "--queue-name", queue, "--dlq-name", dlq)
    assert report.exit_code == 1
    drift = [line for line in report.output.splitlines() if line.startswith("drift:")]
    assert len(drift) == 2
    assert any("VisibilityTimeout is 60, expected 30" in line for line in drift)
    assert any("RedrivePolicy" in line for line in drift)
    assert attributes(sqs_server, url)["VisibilityTimeout"] == "60"  # reported, not changed

    fixed = run_setup_cli(sqs_server, "--queue-name", queue, "--dlq-name", dlq, "--fix")
    assert fixed.exit_code == 0, fixed.output
    assert attributes(sqs_server, url)["VisibilityTimeout"] == "30"
    clean = run_setup_cli(sqs_server, "--queue-name", queue, "--dlq-name", dlq)
    assert clean.exit_code == 0 and "nothing changed" in clean.output


def test_setup_refuses_a_receive_count_that_pre_empts_retries(sqs_server: SqsServer) -> None:
    result = run_setup_cli(sqs_server, "--max-receive-count", "21")
    assert isinstance(result.exception, ConfigurationError)
    assert "at least 22" in str(result.exception)


async def warnings_for(server: SqsServer, queue_url: str, dlq_url: str | None) -> list[str]:
    transport = SqsTransport(queue_url, dlq_url, client_config=server.client_config())
    try:
        return await check_at_start(transport, grace_period=30)
    finally:
        await transport.aclose()


async def test_a_queue_set_up_by_botqueue_draws_no_warning(sqs_server: SqsServer) -> None:
    queue, dlq = names()
    async with create_client(sqs_server.client_config()) as client:
        report = await setup_queues(client, queue_name=queue, dlq_name=dlq)
    assert await warnings_for(sqs_server, report.queue_url, report.dlq_url) == []
    assert await warnings_for(sqs_server, report.queue_url, None) == []


async def test_start_up_warns_once_per_problem(sqs_server: SqsServer) -> None:
    client = sqs_server.boto3_client()
    base = f"w-{uuid.uuid4().hex[:10]}"
    dlq = client.create_queue(QueueName=f"{base}-dlq.fifo", Attributes={"FifoQueue": "true"})
    other = client.create_queue(QueueName=f"{base}-other.fifo", Attributes={"FifoQueue": "true"})
    other_arn = client.get_queue_attributes(
        QueueUrl=other["QueueUrl"], AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    # Everything wrong at once: not FIFO, redrive into another queue with the spec's
    # maxReceiveCount of 3, and a visibility timeout shorter than the 30 s grace period.
    main = client.create_queue(
        QueueName=base,
        Attributes={
            "VisibilityTimeout": "10",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": other_arn, "maxReceiveCount": 3}),
        },
    )
    found = await warnings_for(sqs_server, main["QueueUrl"], dlq["QueueUrl"])
    assert len(found) == 4, found
    assert all("\n" not in line for line in found)
    not_fifo, target, receive_count, visibility = found
    assert "is not FIFO" in not_fifo
    assert "not the configured DLQ" in target
    assert "maxReceiveCount 3 would pre-empt retries" in receive_count
    assert "VisibilityTimeout 10s is shorter than the grace period 30s" in visibility


async def test_the_spec_recipe_queues_warn_about_the_missing_redrive_policy(
    sqs_server: SqsServer,
) -> None:
    client = sqs_server.boto3_client()
    base = f"r-{uuid.uuid4().hex[:10]}"
    main = client.create_queue(
        QueueName=f"{base}.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )
    dlq = client.create_queue(QueueName=f"{base}-dlq.fifo", Attributes={"FifoQueue": "true"})
    with structlog.testing.capture_logs() as logged:
        found = await warnings_for(sqs_server, main["QueueUrl"], dlq["QueueUrl"])
    assert len(found) == 1 and "redrive target is not set" in found[0]
    assert [(entry["event"], entry["log_level"]) for entry in logged] == [(found[0], "warning")]


async def test_start_up_check_without_a_dlq_is_a_configuration_error(sqs_server: SqsServer) -> None:
    client = sqs_server.boto3_client()
    url = client.create_queue(
        QueueName=f"x-{uuid.uuid4().hex[:10]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    with pytest.raises(ConfigurationError, match="BOT_OPERATIONS_DLQ_URL"):
        await warnings_for(sqs_server, url, None)


async def test_start_up_check_ignores_the_embedded_queue(tmp_path: Any) -> None:
    transport = open_transport(f"sqlite:///{tmp_path / 'q.db'}")
    try:
        assert await check_at_start(transport, grace_period=30) == []
    finally:
        await transport.aclose()
