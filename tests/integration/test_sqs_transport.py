"""The SQS transport against real servers: what the shared suite cannot ask of SQS, and the
shape of its requests."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from botqueue.errors import ConfigurationError
from botqueue.transports import OutgoingMessage, open_transport
from botqueue.transports.sqs import SqsTransport
from botqueue.transports.sqs_client import LONG_POLL_SECONDS
from tests.integration.sqs_faults import Faults, RequestCounter
from tests.integration.sqs_servers import SqsServer, create_queue_pair, delete_queue_pair


def msg(body: str, group: str = "g") -> OutgoingMessage:
    return OutgoingMessage(body=body, group_id=group, deduplication_id=uuid.uuid4().hex)


async def test_visibility_timeout_redelivers(sqs: SqsTransport) -> None:
    await sqs.send_batch([msg("v")])
    (first,) = await sqs.receive(1, wait_seconds=0, visibility_timeout=1)
    assert first.receive_count == 1
    assert await sqs.receive(1, wait_seconds=0) == []
    (again,) = await sqs.receive(1, wait_seconds=5, visibility_timeout=30)
    assert again.message_id == first.message_id
    assert again.receive_count == 2
    assert again.first_received_at == pytest.approx(first.first_received_at, abs=0.01)
    assert await sqs.delete_batch([again.receipt]) == []
    assert await sqs.receive(1, wait_seconds=0) == []


async def test_expired_receipt_of_a_visible_message_is_refused(
    localstack_server: SqsServer,
) -> None:
    # What SQS FIFO does ("the receipt handle has expired"); moto deletes the message anyway.
    pair = await create_queue_pair(localstack_server)
    transport = SqsTransport(
        pair.url, pair.dlq_url, client_config=localstack_server.client_config()
    )
    try:
        await transport.send_batch([msg("e")])
        (first,) = await transport.receive(1, wait_seconds=0, visibility_timeout=1)
        await asyncio.sleep(1.5)
        assert await transport.delete_batch([first.receipt]) == [first.receipt]
        (again,) = await transport.receive(1, wait_seconds=2)
        assert again.message_id == first.message_id
    finally:
        await transport.aclose()
        await delete_queue_pair(localstack_server, pair)


async def test_stats_counts(sqs: SqsTransport) -> None:
    await sqs.send_batch([msg("s1", "S1"), msg("s2", "S2"), msg("s3", "S3")])
    (held,) = await sqs.receive(1, wait_seconds=0)
    stats = await sqs.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (2, 1, 0)
    # SQS has no oldest-message age; documented in docs/sqs.md.
    assert stats.oldest_age_seconds == 0.0
    await sqs.dead_letter(held, {"error": "x", "kind": "permanent"})
    assert (await sqs.stats()).dead_letters == 1


async def test_receive_asks_for_what_the_consumer_needs(sqs: SqsTransport) -> None:
    client = await sqs.client()
    seen = Faults("ReceiveMessage", 0, lambda: None).attach(client)
    await sqs.send_batch([msg("r", "R")])
    started = time.time()
    (received,) = await sqs.receive(10)  # a message is there: the 20 s long poll returns at once
    await sqs.receive(3, wait_seconds=0.4, visibility_timeout=1.2)
    first, second = seen.bodies
    assert first["MaxNumberOfMessages"] == 10
    assert first["WaitTimeSeconds"] == LONG_POLL_SECONDS
    assert first["VisibilityTimeout"] == 30
    assert {"ApproximateReceiveCount", "SentTimestamp", "MessageGroupId"} <= set(
        first["MessageSystemAttributeNames"]
    )
    assert first["ReceiveRequestAttemptId"] != second["ReceiveRequestAttemptId"]
    # SQS takes whole seconds: fractions round up, so a short wait never becomes no wait.
    assert (second["MaxNumberOfMessages"], second["WaitTimeSeconds"]) == (3, 1)
    assert second["VisibilityTimeout"] == 2
    assert received.group_id == "R"
    assert received.receive_count == 1
    assert received.sent_at == pytest.approx(started, abs=5)
    assert received.first_received_at >= received.sent_at


async def test_read_timeout_is_above_the_long_poll(sqs: SqsTransport) -> None:
    client = await sqs.client()
    assert client.meta.config.read_timeout > LONG_POLL_SECONDS
    assert client.meta.config.retries["mode"] == "standard"


async def test_a_full_long_poll_on_an_empty_queue_returns_empty(
    localstack_server: SqsServer,
) -> None:
    pair = await create_queue_pair(localstack_server)
    transport = SqsTransport(
        pair.url, pair.dlq_url, client_config=localstack_server.client_config()
    )
    try:
        started = time.monotonic()
        assert await transport.receive(10, wait_seconds=LONG_POLL_SECONDS) == []
        assert time.monotonic() - started >= LONG_POLL_SECONDS - 1
    finally:
        await transport.aclose()
        await delete_queue_pair(localstack_server, pair)


async def test_a_message_taken_by_a_cancelled_long_poll_comes_back(sqs: SqsTransport) -> None:
    # Cancelling closes the connection, but the server may still hand a message that arrives
    # during the rest of the poll to it (LocalStack does): it is not lost, only hidden for
    # the poll's visibility timeout (docs/sqs.md).
    poll = asyncio.ensure_future(sqs.receive(10, wait_seconds=10, visibility_timeout=1))
    await asyncio.sleep(0.3)
    poll.cancel()
    with pytest.raises(asyncio.CancelledError):
        await poll
    await sqs.send_batch([msg("after")])
    received = await sqs.receive(10, wait_seconds=5)
    assert [m.body for m in received] == ["after"]
    assert received[0].receive_count in (1, 2)


async def test_requests_are_counted_once_per_batch(sqs: SqsTransport) -> None:
    counter = RequestCounter().attach(await sqs.client())
    results = await sqs.send_batch([msg(f"b{i}", f"G{i % 3}") for i in range(25)])
    assert all(r.message_id for r in results)
    received = []
    while batch := await sqs.receive(10, wait_seconds=0):
        received += batch
        assert await sqs.delete_batch([m.receipt for m in batch]) == []
    assert len(received) == 25
    assert counter.counts["SendMessageBatch"] == 3
    assert counter.counts["DeleteMessageBatch"] == counter.counts["ReceiveMessage"] - 1


async def test_dlq_url_comes_from_the_redrive_policy(sqs_server: SqsServer) -> None:
    pair = await create_queue_pair(sqs_server)
    transport = SqsTransport(pair.url, client_config=sqs_server.client_config())
    try:
        assert await transport.dlq_url() == pair.dlq_url
    finally:
        await transport.aclose()
        await delete_queue_pair(sqs_server, pair)


async def test_no_dlq_url_and_no_redrive_policy_is_a_one_line_error(
    sqs_server: SqsServer,
) -> None:
    client = sqs_server.boto3_client()
    url = client.create_queue(
        QueueName=f"n-{uuid.uuid4().hex[:10]}.fifo", Attributes={"FifoQueue": "true"}
    )["QueueUrl"]
    transport = SqsTransport(url, client_config=sqs_server.client_config())
    try:
        with pytest.raises(ConfigurationError) as caught:
            await transport.stats()
        assert "BOT_OPERATIONS_DLQ_URL" in str(caught.value)
        assert "\n" not in str(caught.value)
    finally:
        await transport.aclose()
        client.delete_queue(QueueUrl=url)


async def test_a_missing_queue_is_a_configuration_error(sqs_server: SqsServer) -> None:
    url = f"{sqs_server.endpoint}/000000000000/missing-{uuid.uuid4().hex[:8]}.fifo"
    transport = SqsTransport(url, url, client_config=sqs_server.client_config())
    try:
        with pytest.raises(ConfigurationError, match="does not exist"):
            await transport.stats()
    finally:
        await transport.aclose()


async def test_open_transport_gives_sqs_for_http_urls(
    sqs_server: SqsServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in sqs_server.env().items():
        monkeypatch.setenv(name, value)
    pair = await create_queue_pair(sqs_server)
    transport = open_transport(pair.url, pair.dlq_url, visibility_timeout=7)
    try:
        assert isinstance(transport, SqsTransport)
        assert transport.client_config.endpoint_url == sqs_server.endpoint
        assert transport.visibility_timeout == 7
        await transport.send_batch([msg("via open_transport")])
        assert [m.body for m in await transport.receive(1, wait_seconds=1)] == [
            "via open_transport"
        ]
    finally:
        await transport.aclose()
        await delete_queue_pair(sqs_server, pair)
