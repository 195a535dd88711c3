"""``botqueue setup`` on SQS: the queues as the spec configures them, plus the redrive policy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from ..errors import ConfigurationError
from ..operations import MAX_RETRIES_LIMIT
from .sqs_checks import MIN_MAX_RECEIVE_COUNT
from .sqs_client import create_client, error_code, register_hooks, resolve_client_config, translated
from .sqs_names import DEFAULT_MAX_RECEIVE_COUNT, DLQ_NAME, QUEUE_NAME

_DAY = 24 * 3600
MAIN_ATTRIBUTES = {
    "FifoQueue": "true",
    "ContentBasedDeduplication": "true",
    "MessageRetentionPeriod": str(4 * _DAY),
    "VisibilityTimeout": "30",
    "ReceiveMessageWaitTimeSeconds": "20",
}
"""The spec's main queue: FIFO, content-based deduplication, 4 days, 30 s, 20 s long polls."""
DLQ_ATTRIBUTES = {**MAIN_ATTRIBUTES, "MessageRetentionPeriod": str(14 * _DAY)}
"""The spec's DLQ: the same, kept 14 days."""
_IMMUTABLE = {"FifoQueue"}


@dataclass
class SetupReport:
    """What setup found and did: URLs, queues created, drift found, attributes fixed."""

    queue_url: str
    dlq_url: str
    created: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    unfixed: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable report, one fact per line, ending with the two environment lines."""
        out = [f"created {name}" for name in self.created]
        out += [f"drift: {item}" for item in self.drift]
        out += [f"fixed: {item}" for item in self.fixed]
        if not (self.created or self.drift):
            out.append("queues exist as configured; nothing changed")
        return [
            *out,
            f"BOT_OPERATIONS_QUEUE_URL={self.queue_url}",
            f"BOT_OPERATIONS_DLQ_URL={self.dlq_url}",
        ]


async def run_setup(
    queue_name: str, dlq_name: str, max_receive_count: int, fix: bool
) -> SetupReport:
    """Set the queues up with a client from AWS_REGION / USE_LOCALSTACK / SQS_ENDPOINT."""
    config = resolve_client_config(None)
    with translated("client set-up"):
        context = create_client(config)
        client = await context.__aenter__()
    try:
        register_hooks(client)
        return await setup_queues(
            client,
            queue_name=queue_name,
            dlq_name=dlq_name,
            max_receive_count=max_receive_count,
            fix=fix,
        )
    finally:
        await context.__aexit__(None, None, None)


async def setup_queues(
    client: Any,
    *,
    queue_name: str = QUEUE_NAME,
    dlq_name: str = DLQ_NAME,
    max_receive_count: int = DEFAULT_MAX_RECEIVE_COUNT,
    fix: bool = False,
) -> SetupReport:
    """Create the DLQ and the main queue with its redrive policy where missing; report (and
    with ``fix``, correct) any drift of existing queues. Idempotent: a second run changes nothing.

    Raises:
        ConfigurationError: a name without ``.fifo`` or a maxReceiveCount that pre-empts retries.
    """
    for name in (queue_name, dlq_name):
        if not name.endswith(".fifo"):
            raise ConfigurationError(f"queue names must end in .fifo: {name!r}")
    if max_receive_count < MIN_MAX_RECEIVE_COUNT:
        raise ConfigurationError(
            f"--max-receive-count must be at least {MIN_MAX_RECEIVE_COUNT} (maxRetries may be "
            f"up to {MAX_RETRIES_LIMIT}), got {max_receive_count}"
        )
    report = SetupReport("", "")
    report.dlq_url = await _ensure(client, dlq_name, DLQ_ATTRIBUTES, report, fix)
    with translated("GetQueueAttributes"):
        found = await client.get_queue_attributes(
            QueueUrl=report.dlq_url, AttributeNames=["QueueArn"]
        )
    policy = {
        "deadLetterTargetArn": found["Attributes"]["QueueArn"],
        "maxReceiveCount": max_receive_count,
    }
    expected = {**MAIN_ATTRIBUTES, "RedrivePolicy": json.dumps(policy)}
    report.queue_url = await _ensure(client, queue_name, expected, report, fix)
    return report


async def _ensure(
    client: Any, name: str, expected: dict[str, str], report: SetupReport, fix: bool
) -> str:
    with translated("GetQueueUrl"):
        try:
            url = str((await client.get_queue_url(QueueName=name))["QueueUrl"])
        except ClientError as error:
            code = error_code(error)
            if not (code == "QueueDoesNotExist" or code.endswith("NonExistentQueue")):
                raise
            created = await client.create_queue(QueueName=name, Attributes=expected)
            report.created.append(name)
            return str(created["QueueUrl"])
        response = await client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    differences = attribute_drift(expected, response.get("Attributes", {}))
    for key, want, have in differences:
        line = f"{name} {key} is {have or 'unset'}, expected {want}"
        report.drift.append(line)
        if not fix or key in _IMMUTABLE:
            report.unfixed.append(line)
    mutable = {key: want for key, want, _ in differences if key not in _IMMUTABLE}
    if fix and mutable:
        with translated("SetQueueAttributes"):
            await client.set_queue_attributes(QueueUrl=url, Attributes=mutable)
        report.fixed += [f"{name} {key}={value}" for key, value in mutable.items()]
    return url


def attribute_drift(expected: dict[str, str], actual: dict[str, str]) -> list[tuple[str, str, str]]:
    """(attribute, expected, actual) for each expected attribute the queue does not have."""
    drift = []
    for key, want in expected.items():
        have = actual.get(key, "")
        same = _same_policy(want, have) if key == "RedrivePolicy" else have == want
        if not same:
            drift.append((key, want, have))
    return drift


def _same_policy(want: str, have: str) -> bool:
    if not have:
        return False
    a, b = json.loads(want), json.loads(have)
    return bool(
        a["deadLetterTargetArn"] == b.get("deadLetterTargetArn")
        and int(a["maxReceiveCount"]) == int(b.get("maxReceiveCount", 0))
    )
