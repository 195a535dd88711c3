"""Batching and retries on SQS: requests per operation, throttling and network errors."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.errors import TransportError
from botqueue.transports import OutgoingMessage
from botqueue.transports.sqs import SqsTransport
from tests.factories import invite
from tests.integration.sqs_faults import Faults, RequestCounter, network_error, throttled
from tests.integration.sqs_servers import SqsServer, create_queue_pair, delete_queue_pair
from tests.services import CountingService


async def test_a_drain_of_100_costs_about_0_3_requests_per_operation(
    sqs_server: SqsServer,
) -> None:
    total = 100
    pair = await create_queue_pair(sqs_server, "drain")
    producer_side = SqsTransport(pair.url, pair.dlq_url, client_config=sqs_server.client_config())
    consumer_side = SqsTransport(pair.url, pair.dlq_url, client_config=sqs_server.client_config())
    sent = RequestCounter().attach(await producer_side.client())
    consumed = RequestCounter().attach(await consumer_side.client())
    ops = [invite(1 + n % 25, f"d{n}") for n in range(total)]
    service = CountingService(total)
    try:
        async with BotQueueProducer(producer_side) as producer:
            await producer.enqueue_many(ops)
        consumer = BotQueueConsumer(
            service, consumer_side, concurrency=10, wait_time_seconds=1, log_operations=False
        )
        await consumer.start()
        await asyncio.wait_for(service.done.wait(), 60)
        await consumer.stop()
        stats = await consumer_side.stats()
    finally:
        await producer_side.aclose()
        await consumer_side.aclose()
        await delete_queue_pair(sqs_server, pair)
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 0)
    assert sent.counts == {"SendMessageBatch": 10}
    assert consumed.counts["DeleteMessageBatch"] <= 12
    # The floor is 0.3: one send, one receive and one delete per 10 operations. The stats
    # request above, an empty receive at the end and a ragged batch or two are the rest.
    per_operation = (sent.total + consumed.total) / total
    assert per_operation <= 0.36, (sent.counts, consumed.counts)
    assert service.calls == total


async def test_a_throttled_send_is_retried_with_the_same_deduplication_id(
    sqs: SqsTransport,
) -> None:
    faults = Faults("SendMessageBatch", 2, throttled).attach(await sqs.client())
    message = OutgoingMessage("once", "T", f"dedup-{uuid.uuid4().hex}")
    (result,) = await sqs.send_batch([message])
    assert result.message_id
    assert len(faults.bodies) == 3
    assert {body["Entries"][0]["MessageDeduplicationId"] for body in faults.bodies} == {
        message.deduplication_id
    }
    received = await sqs.receive(10, wait_seconds=1)
    assert [m.body for m in received] == ["once"]


async def test_a_send_after_a_network_error_is_neither_lost_nor_doubled(sqs: SqsTransport) -> None:
    faults = Faults("SendMessageBatch", 1, network_error).attach(await sqs.client())
    results = await sqs.send_batch(
        [OutgoingMessage(f"n{i}", "N", f"net-{uuid.uuid4().hex}") for i in range(3)]
    )
    assert all(r.message_id for r in results)
    assert len(faults.bodies) == 2 and faults.bodies[0] == faults.bodies[1]
    received = await sqs.receive(10, wait_seconds=1)
    assert [m.body for m in received] == ["n0", "n1", "n2"]


async def test_a_throttled_receive_gets_a_new_attempt_id(sqs: SqsTransport) -> None:
    await sqs.send_batch([OutgoingMessage("r", "R", uuid.uuid4().hex)])
    faults = Faults("ReceiveMessage", 1, throttled).attach(await sqs.client())
    received = await sqs.receive(10, wait_seconds=1)
    assert [m.body for m in received] == ["r"]
    first, second = (body["ReceiveRequestAttemptId"] for body in faults.bodies)
    assert first != second


async def test_a_receive_after_a_network_error_keeps_its_attempt_id(sqs: SqsTransport) -> None:
    await sqs.send_batch([OutgoingMessage("r", "R", uuid.uuid4().hex)])
    faults = Faults("ReceiveMessage", 1, network_error).attach(await sqs.client())
    received = await sqs.receive(10, wait_seconds=1)
    assert [m.body for m in received] == ["r"]
    first, second = (body["ReceiveRequestAttemptId"] for body in faults.bodies)
    assert first == second


async def test_when_retries_run_out_the_error_is_a_transport_error(sqs: SqsTransport) -> None:
    faults = Faults("DeleteMessageBatch", 100, throttled).attach(await sqs.client())
    with pytest.raises(TransportError, match="RequestThrottled"):
        await sqs.delete_batch(["any-receipt"])
    assert len(faults.bodies) == sqs.client_config.max_attempts
