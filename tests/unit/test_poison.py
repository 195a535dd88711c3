"""Poison (issue 12, point 5): a service that raises something unexpected, or hangs, for one
user ends that user's operations in the DLQ after their retries (the hang bounded by the
operation timeout), while every other group completes meanwhile."""

from __future__ import annotations

import asyncio

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.operations import InviteUser
from botqueue.retry import Backoff
from botqueue.service import Outcome
from botqueue.transports import SqliteTransport

POISONED = 666


class PoisonedService:
    """Performs every operation, except the poisoned user's: they raise or hang."""

    def __init__(self, how: str) -> None:
        self.how = how
        self.done: list[int] = []

    async def invite_user(self, op: InviteUser) -> Outcome:
        if op.user_id == POISONED:
            if self.how == "raise":
                raise ZeroDivisionError("a bug for this user only")
            await asyncio.Event().wait()  # never answers
        self.done.append(op.user_id)
        return Outcome()

    async def remove_user(self, op: object) -> Outcome:
        raise AssertionError("not used")

    async def verify_permissions(self, op: object) -> Outcome:
        raise AssertionError("not used")


async def run(transport: SqliteTransport, how: str) -> PoisonedService:
    users = [POISONED, *range(1, 21)]
    await BotQueueProducer(transport).enqueue_many(
        InviteUser(
            user_id=u, channel_id="-1001", subscription_id=f"s{u}", order_id="o", max_retries=1
        )
        for u in users
    )
    service = PoisonedService(how)
    consumer = BotQueueConsumer(
        service,  # type: ignore[arg-type]
        transport,
        drain=True,
        wait_time_seconds=0.2,
        concurrency=4,
        backoff=Backoff(base=0.05),
        operation_timeout=0.5,
        log_operations=False,
    )
    await asyncio.wait_for(consumer.run(), 60)
    return service


async def test_an_unexpected_exception_for_one_user_dead_letters_only_theirs(
    sqlite_transport: SqliteTransport,
) -> None:
    service = await run(sqlite_transport, "raise")
    assert sorted(service.done) == list(range(1, 21))
    (letter,) = await sqlite_transport.dlq_list()
    assert letter.failure is not None
    assert letter.failure["kind"] == "exhausted" and letter.failure["attempts"] == 2
    assert "ZeroDivisionError" in letter.failure["errorType"]


async def test_a_hang_for_one_user_is_bounded_by_the_operation_timeout(
    sqlite_transport: SqliteTransport,
) -> None:
    service = await run(sqlite_transport, "hang")
    assert sorted(service.done) == list(range(1, 21))
    (letter,) = await sqlite_transport.dlq_list()
    assert letter.failure is not None
    assert letter.failure["kind"] == "exhausted"
    assert letter.failure["errorType"] == "OperationTimeoutError"
    assert "within 0.5 s" in letter.failure["error"]
    stats = await sqlite_transport.stats()
    assert (stats.visible, stats.in_flight) == (0, 0)
