"""Retries through visibility, and the DLQ with its failure record, on the embedded queue."""

from __future__ import annotations

import json

import pytest

from botqueue import BotQueueConsumer, BotQueueProducer, PermanentError, RetryableError
from botqueue.consumer import Retrying, Settled
from botqueue.retry import Backoff
from botqueue.transports import OutgoingMessage, SqliteTransport
from tests.conftest import FakeClock
from tests.factories import invite, remove
from tests.services import RecordingService, always


async def seconds_until_visible(transport: SqliteTransport, clock: FakeClock) -> float:
    (visible_at,) = await transport.db.run(
        lambda conn: conn.execute(
            "SELECT visible_at FROM messages WHERE queue = ?", (transport.queue.name,)
        ).fetchone()
    )
    return float(visible_at) - clock()


def consumer(
    service: RecordingService, transport: SqliteTransport, **kw: object
) -> BotQueueConsumer:
    return BotQueueConsumer(service, transport, log_operations=False, **kw)  # type: ignore[arg-type]


async def test_backoff_schedule_through_visibility_then_dead_letter(
    clocked_transport: SqliteTransport, clock: FakeClock
) -> None:
    await BotQueueProducer(clocked_transport).enqueue(remove(max_retries=4))
    service = RecordingService(always(RetryableError("Bad Gateway")))
    processor = consumer(service, clocked_transport).processor
    delays = []
    for _ in range(4):
        (message,) = await clocked_transport.receive(1, wait_seconds=0)
        decision = await processor.process(message)
        delay = await seconds_until_visible(clocked_transport, clock)
        # The processor says what it decided: a retry, visible again after that delay.
        assert decision == Retrying(delay)
        delays.append(delay)
        # The message stays put, invisible: no delete-and-resend.
        assert (await clocked_transport.stats()).in_flight == 1
        assert await clocked_transport.receive(1, wait_seconds=0) == []
        clock.advance(delay)
    assert delays == [1, 2, 4, 8]
    (message,) = await clocked_transport.receive(1, wait_seconds=0)
    assert message.receive_count == 5
    first_attempt = message.first_received_at
    assert await processor.process(message) == Settled("dead_lettered")
    (letter,) = await clocked_transport.dlq_list()
    assert json.loads(letter.body)["subscriptionId"] == "sub-1"
    failure = letter.failure
    assert failure is not None
    assert failure["kind"] == "exhausted"
    assert failure["attempts"] == 5
    assert failure["error"] == "Bad Gateway"
    assert failure["originalMessageId"] == message.message_id
    assert failure["operationType"] == "REMOVE_USER"
    assert failure["firstAttemptAt"].endswith("Z") and failure["lastAttemptAt"].endswith("Z")
    assert first_attempt < clock()  # the first attempt is the first receive, 15 s earlier
    stats = await clocked_transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 1)
    assert len(service.calls) == 5


async def test_retry_after_longer_than_backoff_wins(
    clocked_transport: SqliteTransport, clock: FakeClock
) -> None:
    await BotQueueProducer(clocked_transport).enqueue(remove())
    service = RecordingService(always(RetryableError("Too Many Requests", retry_after=37)))
    processor = consumer(service, clocked_transport).processor
    (message,) = await clocked_transport.receive(1, wait_seconds=0)
    await processor.process(message)
    assert await seconds_until_visible(clocked_transport, clock) == 37


async def test_max_retries_zero_dead_letters_after_one_attempt(
    clocked_transport: SqliteTransport,
) -> None:
    await BotQueueProducer(clocked_transport).enqueue(remove(max_retries=0))
    service = RecordingService(always(RetryableError("timeout")))
    await consumer(service, clocked_transport, drain=True, wait_time_seconds=0).run()
    (letter,) = await clocked_transport.dlq_list()
    assert letter.failure is not None and letter.failure["attempts"] == 1


async def test_permanent_failure_goes_to_the_dlq_at_once(sqlite_transport: SqliteTransport) -> None:
    await BotQueueProducer(sqlite_transport).enqueue(remove(max_retries=5))
    error = PermanentError("Bad Request: not enough rights to restrict/unrestrict chat member")
    service = RecordingService(always(error))
    await consumer(service, sqlite_transport, drain=True, wait_time_seconds=0.2).run()
    assert len(service.calls) == 1
    (letter,) = await sqlite_transport.dlq_list()
    assert letter.failure is not None
    assert letter.failure["kind"] == "permanent"
    assert letter.failure["attempts"] == 1
    assert letter.failure["error"] == str(error)


async def test_drop_permanent_deletes_without_a_dead_letter(
    sqlite_transport: SqliteTransport,
) -> None:
    await BotQueueProducer(sqlite_transport).enqueue(remove())
    service = RecordingService(always(PermanentError("chat not found")))
    await consumer(
        service, sqlite_transport, drain=True, wait_time_seconds=0.2, drop_permanent=True
    ).run()
    stats = await sqlite_transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 0)


@pytest.mark.parametrize(
    "body",
    [
        "not json at all",
        '{"operationType": "PROMOTE_USER", "channelId": "@some_chan"}',
        '{"operationType": "INVITE_USER", "userId": -1, "channelId": "@some_chan"}',
    ],
)
async def test_undecodable_body_goes_to_the_dlq(
    sqlite_transport: SqliteTransport, body: str
) -> None:
    await sqlite_transport.send_batch([OutgoingMessage(body, "raw", "raw-1")])
    service = RecordingService()
    await consumer(service, sqlite_transport, drain=True, wait_time_seconds=0.2).run()
    assert service.calls == []
    (letter,) = await sqlite_transport.dlq_list()
    assert letter.body == body
    assert letter.failure is not None
    assert letter.failure["kind"] == "undecodable"
    assert "invalid operation" in letter.failure["error"]


async def test_unexpected_exception_is_retried_not_fatal(sqlite_transport: SqliteTransport) -> None:
    op = invite(9, "boom")
    await BotQueueProducer(sqlite_transport).enqueue(op)
    calls = 0

    def behaviour(op: object, n: int) -> None:
        nonlocal calls
        calls += 1
        if n == 1:
            raise ValueError("bug in the service")

    service = RecordingService(behaviour)
    await consumer(
        service, sqlite_transport, drain=True, wait_time_seconds=0.5, backoff=Backoff(base=0.05)
    ).run()
    assert service.calls == ["boom", "boom"]
    assert (await sqlite_transport.stats()).dead_letters == 0
