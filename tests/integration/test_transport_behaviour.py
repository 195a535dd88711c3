"""The transport behaviour suite: written once, run against every transport.

Each transport is a parameter of the ``transport`` fixture; a new transport is done when this
suite passes against it. Behaviours that need control of the clock live in
tests/unit/test_sqlite_queue.py.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botqueue.transports import MAX_MESSAGE_BYTES, OutgoingMessage, Transport, open_transport
from tests.integration.sqs_servers import sqs_transport

# Where a real SQS server differs from the embedded queue's stricter semantics, or moto from SQS.
SQS_SKIPS = {
    "test_a_superseded_receipt_cannot_delete": (
        "SQS accepts a superseded receipt handle once the message was received again (AWS: "
        "'the request succeeds, but the message might not be deleted')"
    ),
    "test_stats_report_the_oldest_message_age": (
        "SQS has no API for the oldest message's age (CloudWatch's ApproximateAgeOfOldestMessage "
        "is the source); the transport reports 0"
    ),
}
MOTO_SKIPS = {
    "test_deduplication_holds_after_the_first_copy_was_deleted": (
        "moto 5.2 delivers a deduplicated body again once the first copy was deleted; "
        "LocalStack and SQS keep the 5-minute window"
    ),
}


@pytest.fixture(params=["sqlite", "localstack", "moto"])
async def transport(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Transport]:
    """A fresh main queue and DLQ on each transport implementation (per-test SQS queues)."""
    test = request.node.originalname
    if request.param == "sqlite":
        opened = open_transport(f"sqlite:///{tmp_path / 'suite.db'}")
        try:
            yield opened
        finally:
            await opened.aclose()
        return
    reason = SQS_SKIPS.get(test) or (MOTO_SKIPS.get(test) if request.param == "moto" else None)
    if reason:
        pytest.skip(reason)
    server = request.getfixturevalue(f"{request.param}_server")
    async with sqs_transport(server, "suite") as opened:
        yield opened


def msg(body: str, group: str = "g", dedup: str | None = None) -> OutgoingMessage:
    """A message with a unique deduplication id unless one is given."""
    return OutgoingMessage(body=body, group_id=group, deduplication_id=dedup or uuid.uuid4().hex)


async def drain_bodies(transport: Transport, limit: int = 1000) -> list[str]:
    """Receive and delete until empty; return the bodies in the order received."""
    bodies: list[str] = []
    while len(bodies) < limit:
        batch = await transport.receive(10, wait_seconds=0)
        if not batch:
            return bodies
        bodies += [m.body for m in batch]
        assert await transport.delete_batch([m.receipt for m in batch]) == []
    return bodies


async def test_send_receive_delete(transport: Transport) -> None:
    results = await transport.send_batch([msg("a"), msg("b", "h")])
    assert all(r.message_id and r.error is None for r in results)
    received = await transport.receive(10, wait_seconds=0)
    assert {m.message_id for m in received} == {r.message_id for r in results}
    assert all(m.receive_count == 1 for m in received)
    assert await transport.delete_batch([m.receipt for m in received]) == []
    stats = await transport.stats()
    assert (stats.visible, stats.in_flight) == (0, 0)


async def test_strict_order_within_a_group(transport: Transport) -> None:
    bodies = [f"m{i}" for i in range(35)]
    for start in range(0, len(bodies), 10):
        await transport.send_batch([msg(b, "one-group") for b in bodies[start : start + 10]])
    assert await drain_bodies(transport) == bodies


async def test_order_holds_per_group_when_groups_interleave(transport: Transport) -> None:
    sent = [(f"g{i % 4}", f"g{i % 4}-{i}") for i in range(40)]
    for start in range(0, 40, 10):
        await transport.send_batch([msg(b, g) for g, b in sent[start : start + 10]])
    received = await drain_bodies(transport)
    assert sorted(received) == sorted(b for _, b in sent)
    for group in {g for g, _ in sent}:
        assert [b for b in received if b.startswith(group + "-")] == [
            b for g, b in sent if g == group
        ]


async def test_in_flight_message_blocks_its_group_only(transport: Transport) -> None:
    await transport.send_batch([msg("a1", "A"), msg("a2", "A"), msg("b1", "B")])
    first = await transport.receive(1, wait_seconds=0, visibility_timeout=30)
    assert [m.body for m in first] == ["a1"]
    second = await transport.receive(10, wait_seconds=0)
    assert [m.body for m in second] == ["b1"]
    await transport.delete_batch([first[0].receipt])
    third = await transport.receive(10, wait_seconds=0)
    assert [m.body for m in third] == ["a2"]


async def test_deduplication_within_the_window(transport: Transport) -> None:
    first = await transport.send_batch([msg("x", dedup="same-id")])
    second = await transport.send_batch([msg("x", dedup="same-id")])
    assert first[0].message_id and second[0].message_id
    assert await drain_bodies(transport) == ["x"]


async def test_deduplication_holds_after_the_first_copy_was_deleted(transport: Transport) -> None:
    await transport.send_batch([msg("x", dedup="once")])
    assert await drain_bodies(transport) == ["x"]
    await transport.send_batch([msg("x", dedup="once")])
    assert await drain_bodies(transport) == []


async def test_visibility_timeout_redelivers_with_a_higher_receive_count(
    transport: Transport,
) -> None:
    await transport.send_batch([msg("v")])
    (first,) = await transport.receive(1, wait_seconds=0, visibility_timeout=1)
    assert await transport.receive(1, wait_seconds=0) == []
    (again,) = await transport.receive(1, wait_seconds=5, visibility_timeout=30)
    assert again.message_id == first.message_id
    assert again.receive_count == 2
    assert await transport.delete_batch([again.receipt]) == []
    assert (await transport.stats()).visible == 0


async def test_a_superseded_receipt_cannot_delete(transport: Transport) -> None:
    await transport.send_batch([msg("v")])
    (first,) = await transport.receive(1, wait_seconds=0, visibility_timeout=1)
    (again,) = await transport.receive(1, wait_seconds=5, visibility_timeout=30)
    assert await transport.delete_batch([first.receipt]) == [first.receipt]
    assert await transport.delete_batch([again.receipt]) == []


async def test_change_visibility_to_zero_releases_at_once(transport: Transport) -> None:
    await transport.send_batch([msg("c")])
    (first,) = await transport.receive(1, wait_seconds=0, visibility_timeout=60)
    assert await transport.change_visibility_batch([(first.receipt, 0)]) == []
    (again,) = await transport.receive(1, wait_seconds=1)
    assert again.message_id == first.message_id and again.receive_count == 2


async def test_change_visibility_delays_the_group(transport: Transport) -> None:
    await transport.send_batch([msg("d1", "D"), msg("d2", "D")])
    (first,) = await transport.receive(1, wait_seconds=0)
    await transport.change_visibility_batch([(first.receipt, 60)])
    # The group stays blocked: d2 must not overtake d1.
    assert await transport.receive(10, wait_seconds=0) == []
    stats = await transport.stats()
    assert (stats.visible, stats.in_flight) == (1, 1)


async def test_long_poll_returns_when_a_message_arrives(transport: Transport) -> None:
    async def send_later() -> None:
        await asyncio.sleep(0.3)
        await transport.send_batch([msg("late")])

    sender = asyncio.create_task(send_later())
    started = time.monotonic()
    received = await transport.receive(10, wait_seconds=10)
    waited = time.monotonic() - started
    await sender
    assert [m.body for m in received] == ["late"]
    assert waited < 10  # it returned on arrival, not at the end of the long poll


async def test_empty_long_poll_returns_nothing(transport: Transport) -> None:
    assert await transport.receive(10, wait_seconds=0.5) == []


async def test_batch_results_are_per_entry(transport: Transport) -> None:
    big = "x" * (MAX_MESSAGE_BYTES + 1)
    results = await transport.send_batch([msg("ok1"), msg(big), msg("ok2")])
    assert results[0].message_id and results[2].message_id
    assert results[1].message_id is None and results[1].error
    assert await drain_bodies(transport) == ["ok1", "ok2"]


async def test_dead_letter_list_redrive_purge(transport: Transport) -> None:
    await transport.send_batch([msg("dead1", "Z", "d-1"), msg("dead2", "Z", "d-2")])
    for expected in ("dead1", "dead2"):
        (message,) = await transport.receive(1, wait_seconds=0)
        assert message.body == expected
        await transport.dead_letter(message, {"error": f"boom {expected}", "kind": "permanent"})
    assert (await transport.stats()).dead_letters == 2
    listed = await transport.dlq_list()
    assert [d.body for d in listed] == ["dead1", "dead2"]
    assert [d.failure for d in listed] == [
        {"error": "boom dead1", "kind": "permanent"},
        {"error": "boom dead2", "kind": "permanent"},
    ]
    assert [d.message_id for d in await transport.dlq_list()] == [d.message_id for d in listed]
    # Redrive within the dedup window of the original ids: a fresh id means it is not swallowed.
    assert await transport.dlq_redrive([listed[0].message_id]) == 1
    assert await drain_bodies(transport) == ["dead1"]
    assert await transport.dlq_redrive() == 1
    assert await drain_bodies(transport) == ["dead2"]
    assert await transport.dlq_list() == []
    await transport.send_batch([msg("dead3")])
    (message,) = await transport.receive(1, wait_seconds=0)
    await transport.dead_letter(message, {"error": "x", "kind": "exhausted"})
    assert await transport.dlq_purge() == 1
    assert (await transport.stats()).dead_letters == 0


async def test_stats_count_visible_and_in_flight(transport: Transport) -> None:
    await transport.send_batch([msg("s1", "S1"), msg("s2", "S2"), msg("s3", "S3")])
    await transport.receive(1, wait_seconds=0)
    await asyncio.sleep(0.05)
    stats = await transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (2, 1, 0)
    assert set(stats.as_dict()) == {"visible", "in_flight", "dead_letters", "oldest_age_seconds"}


async def test_stats_report_the_oldest_message_age(transport: Transport) -> None:
    await transport.send_batch([msg("aged")])
    await asyncio.sleep(0.05)
    assert (await transport.stats()).oldest_age_seconds > 0
