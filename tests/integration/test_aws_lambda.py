"""The Lambda handler on SQS events as Lambda delivers them: operations sent by the producer
to LocalStack, received with boto3 (receipt handles, system attributes, MessageGroupId) and
shaped as AWS documents an SQS event record, then run against the Bot API sandbox."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from botqueue import aws_lambda
from botqueue.aws_lambda.records import QueueArn
from botqueue.config import load_settings
from botqueue.errors import ConfigurationError, FatalError
from botqueue.operations import AnyOperation
from botqueue.producer import BotQueueProducer
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.transports import OutgoingMessage
from botqueue.transports.sqs import SqsTransport
from tests.factories import invite, remove, verify
from tests.integration.sqs_servers import (
    REGION,
    QueuePair,
    SqsServer,
    create_queue_pair,
    delete_queue_pair,
)

ROOT = Path(__file__).resolve().parents[2]
PREMIUM = "-1001000000001"
CLEARED = [
    "BOT_OPERATIONS_QUEUE_URL",
    "BOT_OPERATIONS_DLQ_URL",
    "BOT_OPERATIONS_OUTCOMES_URL",
    "BOTQUEUE_OUTCOME_HOOK",
    "BOTQUEUE_SERVICE",
    "USE_LOCALSTACK",
    "TELEGRAM_RATE_LIMIT_URL",
    "AWS_LAMBDA_FUNCTION_NAME",
]


@dataclass
class FakeContext:
    """Lambda's context object, as far as the handler reads it."""

    remaining_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class Queues:
    """A test's queue pair on LocalStack, its ARN, a producer and a plain boto3 client."""

    pair: QueuePair
    arn: str
    transport: SqsTransport
    client: Any

    async def send(self, *ops: AnyOperation) -> None:
        for op in ops:
            await BotQueueProducer(self.transport).enqueue(op)

    async def event(self, count: int) -> dict[str, Any]:
        """Receive ``count`` messages and shape them as Lambda's SQS event."""
        return await asyncio.to_thread(self._event, count)

    def _event(self, count: int) -> dict[str, Any]:
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10
        while len(records) < count and time.monotonic() < deadline:
            answer = self.client.receive_message(
                QueueUrl=self.pair.url,
                MaxNumberOfMessages=min(10, count - len(records)),
                WaitTimeSeconds=1,
                VisibilityTimeout=30,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            records += [self._record(raw) for raw in answer.get("Messages", [])]
        assert len(records) == count
        return {"Records": records}

    def _record(self, raw: dict[str, Any]) -> dict[str, Any]:
        # docs.aws.amazon.com/lambda/latest/dg/with-sqs.html: the record of a FIFO queue.
        return {
            "messageId": raw["MessageId"],
            "receiptHandle": raw["ReceiptHandle"],
            "body": raw["Body"],
            "attributes": dict(raw["Attributes"]),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in raw.get("MessageAttributes", {}).items()
            },
            "md5OfBody": raw["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": REGION,
        }

    async def visible(self, wait: int) -> list[dict[str, Any]]:
        """What a receive gets within ``wait`` seconds (then released at once)."""
        answer = await asyncio.to_thread(
            self.client.receive_message,
            QueueUrl=self.pair.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = answer.get("Messages", [])
        return messages


@pytest.fixture
async def queues(localstack_server: SqsServer) -> AsyncIterator[Queues]:
    pair = await create_queue_pair(localstack_server, "lambda")
    client = localstack_server.boto3_client()
    arn = client.get_queue_attributes(QueueUrl=pair.url, AttributeNames=["QueueArn"])
    transport = SqsTransport(
        pair.url, pair.dlq_url, client_config=localstack_server.client_config()
    )
    try:
        yield Queues(pair, arn["Attributes"]["QueueArn"], transport, client)
    finally:
        await transport.aclose()
        await delete_queue_pair(localstack_server, pair)


@pytest.fixture
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, localstack_server: SqsServer, sandbox: SandboxServer
) -> Iterator[None]:
    """The function's environment: LocalStack through SQS_ENDPOINT, the sandbox as Telegram."""
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in localstack_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TELEGRAM_API_BASE_URL", sandbox.url)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", sandbox.token)
    # Each test a fresh instance, with its service's own limiter (flood pauses included).
    aws_lambda.reset()
    yield
    aws_lambda.reset()


async def invoke(event: dict[str, Any], context: FakeContext | None = None) -> list[str]:
    """Call the handler as Lambda does (synchronously, here off the test's event loop)."""
    answer = await asyncio.to_thread(aws_lambda.handler, event, context or FakeContext())
    return [failure["itemIdentifier"] for failure in answer["batchItemFailures"]]


def ids(event: dict[str, Any]) -> list[str]:
    return [record["messageId"] for record in event["Records"]]


@pytest.mark.usefixtures("lambda_env")
async def test_a_batch_that_succeeds_reports_nothing(
    queues: Queues, control: SandboxControl
) -> None:
    await queues.send(
        remove(1003), invite(1003, order="o-1"), invite(1004, order="o-2"), verify("l-1")
    )
    event = await queues.event(4)
    assert all(record["attributes"]["MessageGroupId"] for record in event["Records"])
    assert await invoke(event) == []
    # The removal ran before its group's invite: 1003 is out, then invited back by DM.
    assert 1003 not in (await control.members(PREMIUM))["members"]
    assert len(await control.messages(1003)) == 1
    assert len(await control.messages(1004)) == 1
    # botqueue deleted the settled messages itself (Lambda's delete would come on top).
    assert await queues.visible(wait=0) == []
    assert (await queues.transport.stats()).in_flight == 0


@pytest.mark.usefixtures("lambda_env")
async def test_a_failed_group_is_reported_from_its_failure_on_and_the_others_complete(
    queues: Queues, control: SandboxControl
) -> None:
    await control.inject_fault("unbanChatMember", 502, "Bad Gateway")
    await queues.send(
        remove(1003),  # group A: the unban answers 502, a retry
        invite(1003, order="o-a"),  # group A: behind it, not run
        invite(1006, order="o-b"),  # group B: 1006 blocked the bot, permanent: the DLQ
        remove(1006),  # group B: still runs (1006 is not a member: done)
        invite(1004, order="o-c"),  # group C: done
    )
    event = await queues.event(5)
    group_a = ids(event)[:2]
    assert await invoke(event) == group_a
    # The failed message's visibility is its 1 s backoff, not the receive's 30 s (checked at
    # once, before that second is over): group A is held back, and comes back after it.
    assert await queues.visible(wait=0) == []
    assert 1003 in (await control.members(PREMIUM))["members"]
    assert len(await control.messages(1004)) == 1
    (letter,) = await queues.transport.dlq_list()
    assert letter.message_id != ids(event)[2]  # a copy, with the original's id in its record
    assert letter.failure is not None
    assert letter.failure["kind"] == "permanent"
    assert letter.failure["originalMessageId"] == ids(event)[2]
    assert letter.failure["detail"]["reason"] == "bot_blocked"
    # In order, the failed one on its second attempt.
    back = await queues.visible(wait=5)
    assert [m["MessageId"] for m in back] == group_a
    assert back[0]["Attributes"]["ApproximateReceiveCount"] == "2"


@pytest.mark.usefixtures("lambda_env")
async def test_an_undecodable_body_is_dead_lettered_and_not_reported(queues: Queues) -> None:
    await queues.transport.send_batch([OutgoingMessage("{not an operation", "g-1", "d-1")])
    await queues.send(verify("l-1"))
    event = await queues.event(2)
    assert await invoke(event) == []
    (letter,) = await queues.transport.dlq_list()
    assert letter.body == "{not an operation"
    assert letter.failure is not None
    assert letter.failure["kind"] == "undecodable"
    assert letter.failure["attempts"] == 1


@pytest.mark.usefixtures("lambda_env")
async def test_warm_invocations_reuse_the_service_and_the_transport(
    queues: Queues, control: SandboxControl
) -> None:
    await queues.send(verify("l-1"))
    assert await invoke(await queues.event(1)) == []
    runtime = aws_lambda.runtime()
    service, transports, loop = runtime.service, dict(runtime.transports), runtime.loop
    await queues.send(verify("l-2"), invite(1004, order="o-1"))
    assert await invoke(await queues.event(2)) == []
    assert aws_lambda.runtime() is runtime
    assert runtime.service is service and runtime.loop is loop
    assert runtime.transports == transports and len(transports) == 1
    assert (await control.requests())["methods"]["getMe"] == 1  # started once


@pytest.mark.usefixtures("lambda_env")
async def test_a_pause_that_outlasts_the_invocation_hands_the_batch_back_at_once(
    queues: Queues, control: SandboxControl
) -> None:
    await control.inject_fault("getChatMember", 429, "Too Many Requests", retry_after=30)
    await queues.send(verify("l-1"), verify("l-2"))
    event = await queues.event(2)
    started = time.monotonic()
    # 20 s left: the deadline is 15 s away, the pause 30 s: nothing waits, not even until then.
    assert await invoke(event, FakeContext(remaining_ms=20_000)) == ids(event)
    assert time.monotonic() - started < 10
    # Visible again when the pause ends, not after a backoff.
    await asyncio.sleep(1.5)
    assert await queues.visible(wait=1) == []


@pytest.mark.usefixtures("lambda_env")
async def test_a_pause_that_ends_in_time_is_waited_out(
    queues: Queues, control: SandboxControl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_MAX_FLOOD_HOLD", "0")  # every 429 pauses the bot as a whole
    await control.inject_fault("getChatMember", 429, "Too Many Requests", retry_after=1)
    await queues.send(verify("l-1"), verify("l-2"))
    event = await queues.event(2)
    started = time.monotonic()
    assert await invoke(event) == []
    assert time.monotonic() - started >= 0.9  # the pause, waited out in place
    # One call refused, then both verifications made: nothing handed back, nothing left.
    assert (await control.requests())["methods"]["getChatMember"] == 3
    assert (await queues.transport.stats()).in_flight == 0


@pytest.mark.usefixtures("lambda_env")
async def test_a_token_refused_mid_batch_fails_the_invocation_and_starts_afresh(
    queues: Queues, control: SandboxControl
) -> None:
    await queues.send(verify("l-1"))
    await invoke(await queues.event(1))  # warm: started
    await control.inject_fault("getChatMember", 401, "Unauthorized")
    await queues.send(verify("l-2"))
    event = await queues.event(1)
    with pytest.raises(FatalError):
        await invoke(event)
    assert aws_lambda.runtime().service is None  # the next invocation checks the token again
    (again,) = await queues.visible(wait=1)  # handed back untouched, at once
    assert again["MessageId"] == ids(event)[0]
    assert await queues.transport.dlq_list() == []


@pytest.mark.usefixtures("lambda_env")
@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("TELEGRAM_BOT_TOKEN", None, "TELEGRAM_BOT_TOKEN"),
        ("TELEGRAM_RATE_LIMIT", "fast", "TELEGRAM_RATE_LIMIT"),
        ("BOT_OPERATIONS_OUTCOMES_URL", "sqlite:///o.db", "BOT_OPERATIONS_OUTCOMES_URL"),
    ],
)
async def test_a_misconfiguration_fails_the_whole_batch_with_one_line(
    queues: Queues, monkeypatch: pytest.MonkeyPatch, variable: str, value: str | None, named: str
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    await queues.send(verify("l-1"))
    with pytest.raises(ConfigurationError) as raised:
        await invoke(await queues.event(1))
    assert named in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("arn", "env", "url"),
    [
        (
            "arn:aws:sqs:eu-west-1:123456789012:bot-operations.fifo",
            {},
            "https://sqs.eu-west-1.amazonaws.com/123456789012/bot-operations.fifo",
        ),
        (
            "arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo",
            {},
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q.fifo",
        ),
        (
            "arn:aws:sqs:us-east-1:000000000000:q.fifo",
            {"USE_LOCALSTACK": "true"},
            "http://localhost:4566/000000000000/q.fifo",
        ),
        (
            "arn:aws:sqs:us-east-1:000000000000:q.fifo",
            {"SQS_ENDPOINT": "http://127.0.0.1:9324/"},
            "http://127.0.0.1:9324/000000000000/q.fifo",
        ),
        (
            "arn:aws:sqs:us-east-1:000000000000:q.fifo",
            {"BOT_OPERATIONS_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/other.fifo"},
            "https://sqs.us-east-1.amazonaws.com/1/other.fifo",
        ),
    ],
)
def test_the_queue_url_comes_from_the_event_source_arn(
    monkeypatch: pytest.MonkeyPatch, arn: str, env: dict[str, str], url: str
) -> None:
    for name in [*CLEARED, "SQS_ENDPOINT"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert QueueArn.parse(arn).queue_url(load_settings()) == url


@pytest.mark.parametrize(
    "arn", ["arn:aws:sns:us-east-1:1:topic", "arn:aws:sqs:us-east-1:1", "sqs-queue", ""]
)
def test_an_event_source_that_is_not_a_queue_is_refused(arn: str) -> None:
    with pytest.raises(ConfigurationError, match="eventSourceARN"):
        QueueArn.parse(arn)


def test_the_template_passes_cfn_lint() -> None:
    lint = "import sys; from cfnlint.runner import main; sys.exit(main())"
    done = subprocess.run(
        [sys.executable, "-c", lint, "--format", "parseable", "--", "deploy/lambda.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Any error, warning or informational finding makes the exit code non-zero.
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_template_wires_the_handler_for_partial_batch_responses() -> None:
    text = (ROOT / "deploy" / "lambda.yaml").read_text()
    assert "botqueue.aws_lambda.handler" in text
    assert "FunctionResponseTypes: [ReportBatchItemFailures]" in text
    assert aws_lambda.handler.__module__ == "botqueue.aws_lambda"
