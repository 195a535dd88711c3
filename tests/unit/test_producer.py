"""BotQueueProducer and its sync facade against the real embedded queue."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest
from structlog.testing import capture_logs

from botqueue import (
    BotQueueProducer,
    EnqueueError,
    InviteUser,
    OperationValidationError,
    RemoveUser,
    SyncBotQueueProducer,
    VerifyPermissions,
)
from botqueue.operations import decode_operation
from botqueue.transports import MAX_MESSAGE_BYTES, OutgoingMessage, SendResult, SqliteTransport

from ..conftest import FakeClock
from ..factories import invite


class CountingTransport:
    """Records the size of each send batch, and fails the entries it is told to."""

    def __init__(self, inner: SqliteTransport, fail: Sequence[int] = ()) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.fail = set(fail)
        self.sent = 0

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.batches.append(len(messages))
        results = await self.inner.send_batch(messages)
        first, self.sent = self.sent, self.sent + len(messages)
        return [
            SendResult(error="InternalError") if first + i in self.fail else result
            for i, result in enumerate(results)
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def _bodies(transport: SqliteTransport) -> dict[str, Any]:
    received = await transport.receive(10, wait_seconds=0)
    return {message.message_id: decode_operation(message.body) for message in received}


async def _visible(transport: SqliteTransport) -> int:
    return (await transport.stats()).visible


async def test_each_enqueue_method_sends_its_operation(sqlite_transport: SqliteTransport) -> None:
    producer = BotQueueProducer(sqlite_transport)
    ids = [
        await producer.enqueue_invite_user(5, "@somechan", "sub-1", "ord-1"),
        await producer.enqueue_remove_user(6, "@somechan", "sub-2", "refund", max_retries=5),
        await producer.enqueue_verify_permissions("@otherchan", "lst-1"),
        await producer.enqueue_verify_permissions("@thirdchan"),
    ]
    assert all(isinstance(message_id, str) and message_id for message_id in ids)
    assert len(set(ids)) == 4
    by_id = await _bodies(sqlite_transport)
    assert set(by_id) == set(ids)
    ops = [by_id[message_id] for message_id in ids]
    assert [type(op) for op in ops] == [
        InviteUser,
        RemoveUser,
        VerifyPermissions,
        VerifyPermissions,
    ]
    invite, remove, verify, bare = ops
    assert (invite.user_id, invite.subscription_id, invite.order_id) == (5, "sub-1", "ord-1")
    assert (remove.user_id, remove.reason, remove.max_retries) == (6, "refund", 5)
    assert (verify.channel_id, verify.listing_id) == ("@otherchan", "lst-1")
    assert bare.listing_id is None
    assert all(op.attempt_count == 0 for op in ops)


@pytest.mark.parametrize(
    ("method", "args", "field"),
    [
        ("enqueue_invite_user", (0, "@somechan", "s", "o"), "userId"),
        ("enqueue_invite_user", (-5, "@somechan", "s", "o"), "userId"),
        ("enqueue_invite_user", (True, "@somechan", "s", "o"), "userId"),
        ("enqueue_invite_user", ("5", "@somechan", "s", "o"), "userId"),
        ("enqueue_invite_user", (5, "chan", "s", "o"), "channelId"),
        ("enqueue_invite_user", (5, True, "s", "o"), "channelId"),
        ("enqueue_invite_user", (5, "@somechan", "", "o"), "subscriptionId"),
        ("enqueue_invite_user", (5, "@somechan", "s", "x" * 257), "orderId"),
        ("enqueue_invite_user", (5, "@somechan", "s", "o", 21), "maxRetries"),
        ("enqueue_remove_user", (5, "@somechan", "s", "bogus"), "reason"),
        ("enqueue_remove_user", (5, "@somechan", "s", "refund", -1), "maxRetries"),
        ("enqueue_verify_permissions", ("@ab",), "channelId"),
        ("enqueue_verify_permissions", ("@somechan", ""), "listingId"),
    ],
)
async def test_invalid_arguments_send_nothing(
    sqlite_transport: SqliteTransport, method: str, args: tuple[Any, ...], field: str
) -> None:
    producer = BotQueueProducer(sqlite_transport)
    with pytest.raises(OperationValidationError) as caught:
        await getattr(producer, method)(*args)
    assert field in caught.value.errors
    assert await _visible(sqlite_transport) == 0


async def test_int_channel_ids_become_strings(sqlite_transport: SqliteTransport) -> None:
    producer = BotQueueProducer(sqlite_transport)
    await producer.enqueue_invite_user(5, -1001234567890, "s", "o")
    await producer.enqueue_verify_permissions(-1009876543210)
    ops = (await _bodies(sqlite_transport)).values()
    assert sorted(op.channel_id for op in ops) == ["-1001234567890", "-1009876543210"]


async def test_repeated_call_is_deduplicated(clocked_transport: SqliteTransport) -> None:
    producer = BotQueueProducer(clocked_transport)
    first = await producer.enqueue_remove_user(5, "@somechan", "s", "expiry")
    again = await producer.enqueue_remove_user(5, "@somechan", "s", "expiry")
    assert again == first
    assert await _visible(clocked_transport) == 1


async def test_dedup_window_expires(clocked_transport: SqliteTransport, clock: FakeClock) -> None:
    producer = BotQueueProducer(clocked_transport)
    first = await producer.enqueue_invite_user(5, "@somechan", "s", "o")
    clock.advance(299)
    assert await producer.enqueue_invite_user(5, "@somechan", "s", "o") == first
    clock.advance(2)
    second = await producer.enqueue_invite_user(5, "@somechan", "s", "o")
    assert second != first
    assert await _visible(clocked_transport) == 2


async def test_distinct_operations_are_not_deduplicated(sqlite_transport: SqliteTransport) -> None:
    producer = BotQueueProducer(sqlite_transport)
    first = await producer.enqueue_invite_user(5, "@somechan", "a|b", "c")
    second = await producer.enqueue_invite_user(5, "@somechan", "a", "b|c")
    assert second != first
    assert await _visible(sqlite_transport) == 2


async def test_idempotency_key_overrides_dedup_id(sqlite_transport: SqliteTransport) -> None:
    producer = BotQueueProducer(sqlite_transport)
    first = await producer.enqueue_invite_user(5, "@somechan", "s1", "o", idempotency_key="k")
    other = await producer.enqueue_verify_permissions("@otherchan", idempotency_key="k")
    assert other == first
    assert [op.subscription_id for op in (await _bodies(sqlite_transport)).values()] == ["s1"]
    for bad in ("", "x" * 129, "has space", "ключ"):
        with pytest.raises(OperationValidationError) as caught:
            await producer.enqueue_invite_user(5, "@somechan", "s2", "o", idempotency_key=bad)
        assert set(caught.value.errors) == {"idempotencyKey"}
    assert (await sqlite_transport.stats()).in_flight == 1  # the one _bodies received; no more


async def test_enqueue_many_sends_batches_of_ten(sqlite_transport: SqliteTransport) -> None:
    counting = CountingTransport(sqlite_transport)
    producer = BotQueueProducer(counting)  # type: ignore[arg-type]
    ops = [invite(n, f"s{n}") for n in range(1, 26)]
    ids = await producer.enqueue_many(ops)
    assert counting.batches == [10, 10, 5]
    assert len(ids) == 25
    assert len(set(ids)) == 25
    # In order: resending each operation alone returns its own id (deduplication).
    assert [await producer.enqueue(op) for op in ops] == ids
    assert await _visible(sqlite_transport) == 25


async def test_enqueue_many_with_nothing_sends_nothing(sqlite_transport: SqliteTransport) -> None:
    counting = CountingTransport(sqlite_transport)
    assert await BotQueueProducer(counting).enqueue_many([]) == []  # type: ignore[arg-type]
    assert counting.batches == []


async def test_enqueue_error_carries_sent_ids(sqlite_transport: SqliteTransport) -> None:
    counting = CountingTransport(sqlite_transport, fail=[3, 12])
    producer = BotQueueProducer(counting)  # type: ignore[arg-type]
    with pytest.raises(EnqueueError) as caught:
        await producer.enqueue_many([invite(n, f"s{n}") for n in range(1, 16)])
    assert set(caught.value.failures) == {3, 12}
    assert "InternalError" in caught.value.failures[3]
    assert set(caught.value.message_ids) == set(range(15)) - {3, 12}
    assert len(set(caught.value.message_ids.values())) == 13


async def test_oversized_body_is_an_error_result(sqlite_transport: SqliteTransport) -> None:
    fits = OutgoingMessage(body="x" * MAX_MESSAGE_BYTES, group_id="g", deduplication_id="a")
    too_big = replace(fits, body="x" * (MAX_MESSAGE_BYTES + 1), deduplication_id="b")
    ok, rejected = await sqlite_transport.send_batch([fits, too_big])
    assert ok.message_id is not None
    assert ok.error is None
    assert rejected.message_id is None
    assert rejected.error
    assert await _visible(sqlite_transport) == 1


async def test_one_log_line_per_enqueue(sqlite_transport: SqliteTransport) -> None:
    producer = BotQueueProducer(sqlite_transport)
    with capture_logs() as logs:
        invite_id = await producer.enqueue_invite_user(5, "@somechan", "sub-1", "o")
        remove_id = await producer.enqueue_remove_user(5, "@somechan", "sub-1", "refund")
        verify_id = await producer.enqueue_verify_permissions("@somechan", "lst-1")
    assert [entry["log_level"] for entry in logs] == ["info"] * 3
    assert [(e["operationType"], e["messageId"]) for e in logs] == [
        ("INVITE_USER", invite_id),
        ("REMOVE_USER", remove_id),
        ("VERIFY_PERMISSIONS", verify_id),
    ]
    assert [e.get("subscriptionId") for e in logs] == ["sub-1", "sub-1", None]
    assert logs[2]["listingId"] == "lst-1"


async def test_producer_opened_from_url_closes_its_transport(db_url: str) -> None:
    async with BotQueueProducer(queue_url=db_url) as producer:
        message_id = await producer.enqueue_verify_permissions("@somechan")
    await producer.aclose()
    async with SqliteTransport(db_url) as transport:
        [message] = await transport.receive(1, wait_seconds=0)
    assert message.message_id == message_id


def _count_visible(db_url: str) -> int:
    async def count() -> int:
        async with SqliteTransport(db_url) as transport:
            return await _visible(transport)

    return asyncio.run(count())


def test_sync_producer_without_a_loop(db_url: str) -> None:
    producer = SyncBotQueueProducer(queue_url=db_url)
    ids = [
        producer.enqueue_invite_user(5, "@somechan", "s", "o"),
        producer.enqueue_remove_user(5, "@somechan", "s", "refund"),
        producer.enqueue_verify_permissions(-1001234567890, "l1"),
        *producer.enqueue_many([invite(7, "s7"), invite(8, "s8")]),
    ]
    assert producer.enqueue_invite_user(5, "@somechan", "s", "o") == ids[0]
    producer.close()
    producer.close()
    assert len(set(ids)) == 5
    assert _count_visible(db_url) == 5
    with pytest.raises(RuntimeError):
        producer.enqueue_verify_permissions("@somechan")


def test_sync_producer_raises_validation_errors(db_url: str) -> None:
    with (
        SyncBotQueueProducer(queue_url=db_url) as producer,
        pytest.raises(OperationValidationError) as caught,
    ):
        producer.enqueue_remove_user(5, "@somechan", "s", "bogus")  # type: ignore[arg-type]
    assert "reason" in caught.value.errors
    assert _count_visible(db_url) == 0


async def test_sync_producer_inside_a_running_loop(db_url: str) -> None:
    with SyncBotQueueProducer(queue_url=db_url) as producer:
        first = producer.enqueue_verify_permissions("@somechan")
        second = producer.enqueue_invite_user(5, "@somechan", "s", "o")
    producer.close()
    assert first != second
    async with SqliteTransport(db_url) as transport:
        assert await _visible(transport) == 2
