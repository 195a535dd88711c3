"""Per-entry failures in SQS batches are handled entry by entry."""

from __future__ import annotations

import uuid

from botqueue.transports import OutgoingMessage
from botqueue.transports.base import MAX_MESSAGE_BYTES
from botqueue.transports.sqs import SqsTransport
from tests.integration.sqs_faults import RequestCounter, fail_entries


def msg(body: str, group: str) -> OutgoingMessage:
    return OutgoingMessage(body=body, group_id=group, deduplication_id=uuid.uuid4().hex)


async def drain(sqs: SqsTransport) -> list[str]:
    bodies: list[str] = []
    while batch := await sqs.receive(10, wait_seconds=0):
        bodies += [m.body for m in batch]
        await sqs.delete_batch([m.receipt for m in batch])
    return bodies


async def test_a_delete_batch_reports_only_the_receipts_that_failed(sqs: SqsTransport) -> None:
    await sqs.send_batch([msg("a", "A"), msg("b", "B")])
    received = await sqs.receive(10, wait_seconds=1)
    assert len(received) == 2
    bogus = "not-a-receipt-handle"
    failed = await sqs.delete_batch([received[0].receipt, bogus, received[1].receipt])
    assert failed == [bogus]
    assert (await sqs.stats()).in_flight == 0


async def test_a_visibility_batch_reports_only_the_receipts_that_failed(sqs: SqsTransport) -> None:
    await sqs.send_batch([msg("a", "A")])
    (held,) = await sqs.receive(1, wait_seconds=1)
    bogus = "not-a-receipt-handle"
    assert await sqs.change_visibility_batch([(bogus, 0), (held.receipt, 0)]) == [bogus]
    (again,) = await sqs.receive(1, wait_seconds=1)
    assert again.message_id == held.message_id


async def test_a_transient_entry_failure_is_sent_again(sqs: SqsTransport) -> None:
    calls: list[list[str]] = []
    fail_entries(await sqs.client(), "send_message_batch", {1: ("InternalError", False)}, calls)
    results = await sqs.send_batch([msg("x0", "X0"), msg("x1", "X1"), msg("x2", "X2")])
    assert all(r.message_id for r in results)
    assert calls == [["0", "1", "2"], ["1"]]
    assert sorted(await drain(sqs)) == ["x0", "x1", "x2"]


async def test_a_retry_never_overtakes_a_later_message_of_its_group(sqs: SqsTransport) -> None:
    calls: list[list[str]] = []
    fail_entries(
        await sqs.client(), "send_message_batch", {0: ("ServiceUnavailable", False)}, calls
    )
    results = await sqs.send_batch([msg("g0", "G"), msg("g1", "G"), msg("h0", "H")])
    assert calls == [["0", "1", "2"]]  # "0" went out of order if it were sent again now
    assert results[0].message_id is None and results[0].error
    assert "ServiceUnavailable" in results[0].error
    assert results[1].message_id and results[2].message_id


async def test_a_permanent_entry_failure_is_reported_not_retried(sqs: SqsTransport) -> None:
    calls: list[list[str]] = []
    fail_entries(
        await sqs.client(), "send_message_batch", {1: ("InvalidMessageContents", True)}, calls
    )
    results = await sqs.send_batch([msg("p0", "P0"), msg("p1", "P1")])
    assert len(calls) == 1
    assert results[0].message_id
    assert results[1].message_id is None and "InvalidMessageContents" in (results[1].error or "")


async def test_a_transient_delete_failure_is_retried(sqs: SqsTransport) -> None:
    await sqs.send_batch([msg("d0", "D0"), msg("d1", "D1")])
    received = await sqs.receive(10, wait_seconds=1)
    calls: list[list[str]] = []
    fail_entries(await sqs.client(), "delete_message_batch", {0: ("InternalError", False)}, calls)
    assert await sqs.delete_batch([m.receipt for m in received]) == []
    assert calls == [["0", "1"], ["0"]]
    assert (await sqs.stats()).in_flight == 0


async def test_batches_split_to_stay_under_the_request_size_limit(sqs: SqsTransport) -> None:
    counter = RequestCounter().attach(await sqs.client())
    third = "y" * (MAX_MESSAGE_BYTES // 3)
    results = await sqs.send_batch([msg(third + str(i), f"L{i}") for i in range(4)])
    assert all(r.message_id for r in results)
    assert counter.counts["SendMessageBatch"] == 2
    assert sorted(len(body) for body in await drain(sqs)) == [len(third) + 1] * 4
