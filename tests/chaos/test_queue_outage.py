"""The fixes behind the queue-outage scenario, without servers: the receive loop logs an
outage once and retries at a capped interval, the embedded queue's SQLite failures are typed
and leave no transaction open, and a receive with no answer is not retried for long."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import EndpointConnectionError
from structlog.testing import capture_logs

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.consumer.outage import RECEIVE_RETRY_CAP_SECONDS, ReceiveOutage
from botqueue.errors import EnqueueError, TransportError
from botqueue.transports import ReceivedMessage, SqliteTransport
from botqueue.transports.base import OutgoingMessage
from botqueue.transports.sqs_client import RECEIVE_NETWORK_ATTEMPTS, end_receive_retries
from tests.chaos.queue_outage_parts import readonly_switch
from tests.factories import invite
from tests.services import RecordingService

UNAVAILABLE = "queue unavailable, retrying receives"
AVAILABLE = "queue available again"


def test_an_outage_is_logged_once_each_way_and_retries_are_capped() -> None:
    outage = ReceiveOutage(clock=lambda: 0.0)
    with capture_logs() as logs:
        delays = [outage.failed(TransportError("down")) for _ in range(50)]
        outage.succeeded()
        outage.succeeded()
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    assert events.count((UNAVAILABLE, "warning")) == 1
    assert events.count((AVAILABLE, "info")) == 1
    assert max(delays) == RECEIVE_RETRY_CAP_SECONDS
    assert delays == sorted(delays) and delays[0] < RECEIVE_RETRY_CAP_SECONDS
    assert not outage.unavailable


def test_a_second_outage_is_logged_again() -> None:
    outage = ReceiveOutage()
    with capture_logs() as logs:
        for _ in range(2):
            outage.failed(TransportError("down"))
            outage.failed(TransportError("down"))
            outage.succeeded()
    events = [entry["event"] for entry in logs]
    assert (events.count(UNAVAILABLE), events.count(AVAILABLE)) == (2, 2)


async def test_the_consumer_logs_a_long_outage_once(tmp_path: Path) -> None:
    transport = SqliteTransport(f"sqlite:///{tmp_path / 'q.db'}")
    await BotQueueProducer(transport).enqueue(invite(sub="after-outage"))
    failures = 6

    class Down:
        def __getattr__(self, name: str) -> object:
            return getattr(transport, name)

        async def receive(self, max_messages: int = 10, **kw: object) -> list[ReceivedMessage]:
            nonlocal failures
            if failures:
                failures -= 1
                raise TransportError("queue unreachable")
            return await transport.receive(max_messages, **kw)  # type: ignore[arg-type]

    service = RecordingService()
    consumer = BotQueueConsumer(
        service,
        Down(),  # type: ignore[arg-type]
        drain=True,
        wait_time_seconds=0.1,
        log_operations=False,
    )
    with capture_logs() as logs:
        await consumer.run()
    events = [entry["event"] for entry in logs]
    assert service.calls == ["after-outage"]
    assert (events.count(UNAVAILABLE), events.count(AVAILABLE)) == (1, 1)
    await transport.aclose()


@pytest.mark.parametrize("mode", ["read-only", "full"])
async def test_a_refused_write_is_a_typed_error_and_the_queue_carries_on(
    tmp_path: Path, mode: str
) -> None:
    flag = tmp_path / "flag"
    async with SqliteTransport(f"sqlite:///{tmp_path / 'q.db'}") as transport:
        producer = BotQueueProducer(transport)
        await producer.enqueue(invite(sub="before"))
        with readonly_switch(flag):
            flag.write_text(mode)
            with pytest.raises(EnqueueError) as refused:
                await producer.enqueue_many([invite(sub=f"during-{n}") for n in range(200)])
            with pytest.raises(TransportError):
                await transport.send_batch([OutgoingMessage("x" * 300_000, "g", "big")])
            if mode == "read-only":
                with pytest.raises(TransportError):
                    await transport.receive(10, wait_seconds=0)
            flag.unlink()
            # No transaction was left open: the next writes work on the same connection.
            await producer.enqueue(invite(sub="after"))
            seen: list[str] = []
            while received := await transport.receive(10, wait_seconds=0):
                seen += [json.loads(m.body)["subscriptionId"] for m in received]
                assert await transport.delete_batch([m.receipt for m in received]) == []
        # Exactly what the producer was told: a full disk may take a first batch or two.
        sent = [f"during-{n}" for n in sorted(refused.value.message_ids)]
        assert sorted(seen) == sorted(["before", *sent, "after"])
        assert len(sent) < 200 if mode == "full" else not sent
        stats = await transport.stats()
        assert (stats.visible, stats.in_flight) == (0, 0)


def test_a_receive_with_no_answer_goes_back_to_the_worker_after_two_attempts() -> None:
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    for attempt in range(1, RECEIVE_NETWORK_ATTEMPTS):
        end_receive_retries(attempts=attempt, caught_exception=error)  # botocore retries
    with pytest.raises(EndpointConnectionError):
        end_receive_retries(attempts=RECEIVE_NETWORK_ATTEMPTS, caught_exception=error)
    # An answer (throttling, 5xx) is left to botocore's standard retries.
    end_receive_retries(attempts=RECEIVE_NETWORK_ATTEMPTS, caught_exception=None)
