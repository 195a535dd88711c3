"""The template's IAM policies allow every SQS request botqueue makes: each request of a worker
run (successes, a retry, a permanent failure, an undecodable body, start-up checks, the drain)
and of the admin commands (setup, stats, dlq list / redrive / purge), recorded against moto's
server action by action and queue by queue."""

from __future__ import annotations

import uuid
from typing import Any

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.errors import PermanentError, RetryableError
from botqueue.operations import AnyOperation
from botqueue.retry import Backoff
from botqueue.transports.sqs import SqsTransport
from botqueue.transports.sqs_checks import check_at_start
from botqueue.transports.sqs_client import create_client
from botqueue.transports.sqs_setup import setup_queues
from tests.deploy.cfn import listed, load_template
from tests.integration.sqs_servers import (  # noqa: F401 (a fixture, used by name)
    SqsServer,
    moto_server_fixture,
)
from tests.services import RecordingService, key

Grant = tuple[str, str]
"""(IAM action, the queue's logical id in the template)."""


class Recorder:
    """Records each request a client makes as the IAM action it needs and the queue it is on."""

    def __init__(self, queues: dict[str, str]) -> None:
        self.queues = queues  # queue URL or name -> logical id
        self.calls: set[Grant] = set()

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        target = params.get("QueueUrl") or params.get("QueueName", "")
        queue = self.queues.get(target) or self.queues[target.rstrip("/").rsplit("/", 1)[-1]]
        # Batch requests are authorized by their single-message actions.
        self.calls.add((f"sqs:{model.name.removesuffix('Batch')}", queue))

    def attach(self, client: Any) -> Recorder:
        """Record the client's requests from now on."""
        client.meta.events.register("provide-client-params.sqs", self)
        return self


def grants(logical: str) -> set[Grant]:
    """What one of the template's managed policies allows."""
    document = load_template()["Resources"][logical]["Properties"]["PolicyDocument"]
    return {
        (action, resource["Fn::GetAtt"][0])
        for statement in document["Statement"]
        for action in listed(statement["Action"])
        for resource in listed(statement["Resource"])
    }


def behaviour(op: AnyOperation, call_number: int) -> None:
    if key(op) == "retry" and call_number == 1:
        raise RetryableError("once")
    if key(op) == "perm":
        raise PermanentError("for good")


async def queues(server: SqsServer) -> tuple[str, str, dict[str, str]]:
    base = f"iam-{uuid.uuid4().hex[:10]}"
    names = {f"{base}.fifo": "Queue", f"{base}-dlq.fifo": "DeadLetterQueue"}
    async with create_client(server.client_config()) as client:
        report = await setup_queues(client, queue_name=f"{base}.fifo", dlq_name=f"{base}-dlq.fifo")
    urls = {report.queue_url: "Queue", report.dlq_url: "DeadLetterQueue"}
    return report.queue_url, report.dlq_url, {**names, **urls}


async def test_the_worker_policy_allows_every_request_of_a_worker_and_producer(
    moto_server: SqsServer,
) -> None:
    url, dlq_url, names = await queues(moto_server)
    recorder = Recorder(names)
    transport = SqsTransport(url, dlq_url, client_config=moto_server.client_config())
    try:
        recorder.attach(await transport.client())
        async with BotQueueProducer(transport) as producer:
            for user, subscription in enumerate(("ok", "retry", "perm")):
                await producer.enqueue_remove_user(user + 1, "@iam_room", subscription, "expiry")
        moto_server.boto3_client().send_message(
            QueueUrl=url, MessageBody="{not json", MessageGroupId="g", MessageDeduplicationId="d"
        )
        await check_at_start(transport, grace_period=30)
        service = RecordingService(behaviour)
        consumer = BotQueueConsumer(
            service, transport, drain=True, wait_time_seconds=1, backoff=Backoff(base=0.2)
        )
        await consumer.run()
        assert sorted(service.calls) == ["ok", "perm", "retry", "retry"]
        # The permanent failure and the bad body (counted as the worker's --drain counts).
        assert (await transport.stats()).dead_letters == 2
    finally:
        await transport.aclose()
    # Exactly what the worker requests (through every path it has)...
    assert recorder.calls == {
        ("sqs:SendMessage", "Queue"),
        ("sqs:ReceiveMessage", "Queue"),
        ("sqs:DeleteMessage", "Queue"),
        ("sqs:ChangeMessageVisibility", "Queue"),
        ("sqs:GetQueueAttributes", "Queue"),
        ("sqs:GetQueueAttributes", "DeadLetterQueue"),
        ("sqs:SendMessage", "DeadLetterQueue"),
    }
    # ...and the policy allows each; it grants a little more, as the spec does (receiving,
    # deleting and changing visibility on the DLQ too).
    assert recorder.calls <= grants("WorkerPolicy")


async def test_the_admin_policy_allows_every_request_of_setup_stats_and_dlq(
    moto_server: SqsServer,
) -> None:
    url, dlq_url, names = await queues(moto_server)
    for n in range(3):
        moto_server.boto3_client().send_message(
            QueueUrl=dlq_url,
            MessageBody=f"{{n: {n}}}",
            MessageGroupId="g",
            MessageDeduplicationId=str(n),
        )
    recorder = Recorder(names)
    async with create_client(moto_server.client_config()) as client:
        recorder.attach(client)
        base = url.rsplit("/", 1)[-1].removesuffix(".fifo")
        await setup_queues(client, queue_name=f"{base}.fifo", dlq_name=f"{base}-dlq.fifo")
    # No DLQ URL: the commands find it through the redrive policy, as they do when
    # BOT_OPERATIONS_DLQ_URL is unset.
    transport = SqsTransport(url, None, client_config=moto_server.client_config())
    try:
        recorder.attach(await transport.client())
        assert (await transport.stats()).dead_letters == 3
        letters = await transport.dlq_list()
        assert await transport.dlq_redrive([letters[0].message_id]) == 1
        assert await transport.dlq_purge() == 2
    finally:
        await transport.aclose()
    assert recorder.calls >= {
        ("sqs:GetQueueUrl", "Queue"),
        ("sqs:GetQueueUrl", "DeadLetterQueue"),
        ("sqs:GetQueueAttributes", "Queue"),
        ("sqs:ReceiveMessage", "DeadLetterQueue"),
        ("sqs:ChangeMessageVisibility", "DeadLetterQueue"),
        ("sqs:DeleteMessage", "DeadLetterQueue"),
        ("sqs:SendMessage", "Queue"),
    }
    assert recorder.calls <= grants("AdminPolicy")
