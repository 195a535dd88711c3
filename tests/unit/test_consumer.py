"""The consumer on the real embedded queue: ordering, concurrency, capacity, shutdown."""

from __future__ import annotations

from collections.abc import Sequence

from botqueue import BotQueueConsumer, BotQueueProducer, ConsumerHooks, RetryableError
from botqueue.operations import AnyOperation, InviteUser
from botqueue.retry import Backoff
from botqueue.service import Outcome
from botqueue.transports import ReceivedMessage, SqliteTransport
from tests.factories import invite
from tests.services import RecordingService, fail_times


class Successes(ConsumerHooks):
    """Collects (subscription id, receive count) of every success."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        assert isinstance(op, InviteUser)
        self.seen.append((op.subscription_id, message.receive_count))


def consumer_for(
    service: RecordingService, transport: SqliteTransport, **options: object
) -> BotQueueConsumer:
    settings: dict[str, object] = {
        "drain": True,
        "wait_time_seconds": 0.5,
        "log_operations": False,
        "backoff": Backoff(base=0.05),
    }
    settings.update(options)
    return BotQueueConsumer(service, transport, **settings)  # type: ignore[arg-type]


async def enqueue(transport: SqliteTransport, ops: Sequence[AnyOperation]) -> None:
    await BotQueueProducer(transport).enqueue_many(ops)


async def test_a_failure_mid_batch_holds_back_the_rest_of_its_group(
    sqlite_transport: SqliteTransport,
) -> None:
    await enqueue(sqlite_transport, [invite(7, "m1"), invite(7, "m2"), invite(7, "m3")])
    service = RecordingService(fail_times("m2", 1))
    hooks = Successes()
    await consumer_for(service, sqlite_transport, hooks=[hooks]).run()
    # m3 came in the same receive as m2 but never ran ahead of it.
    assert service.calls == ["m1", "m2", "m2", "m3"]
    assert hooks.seen == [("m1", 1), ("m2", 2), ("m3", 2)]
    stats = await sqlite_transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 0)


async def test_groups_run_in_parallel_up_to_concurrency(
    sqlite_transport: SqliteTransport,
) -> None:
    ops = [invite(user, f"s{user}-{n}") for user in range(1, 21) for n in range(3)]
    await enqueue(sqlite_transport, ops)
    service = RecordingService(delay=0.02)
    await consumer_for(service, sqlite_transport, concurrency=4).run()
    assert sorted(service.calls) == sorted(op.subscription_id for op in ops)
    assert service.max_running == 4
    assert not service.group_overlap
    for user in range(1, 21):
        mine = [c for c in service.calls if c.startswith(f"s{user}-")]
        assert mine == [f"s{user}-{n}" for n in range(3)]


class CountingReceives:
    """Wraps a transport to record how many messages each receive asked for."""

    def __init__(self, inner: SqliteTransport) -> None:
        self.inner = inner
        self.asked: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    async def receive(self, max_messages: int = 10, **kwargs: object) -> list[ReceivedMessage]:
        self.asked.append(max_messages)
        return await self.inner.receive(max_messages, **kwargs)  # type: ignore[arg-type]


async def test_receives_only_what_it_has_capacity_for(sqlite_transport: SqliteTransport) -> None:
    await enqueue(sqlite_transport, [invite(u, f"c{u}") for u in range(1, 31)])
    counting = CountingReceives(sqlite_transport)
    service = RecordingService(delay=0.01)
    consumer = consumer_for(service, counting, concurrency=3)  # type: ignore[arg-type]
    await consumer.run()
    assert len(service.calls) == 30
    assert max(counting.asked) == 3
    assert service.max_running <= 3


async def test_slow_handling_extends_visibility_instead_of_redelivering(
    sqlite_transport: SqliteTransport,
) -> None:
    await enqueue(sqlite_transport, [invite(1, "slow")])
    service = RecordingService(delay=2.5)
    hooks = Successes()
    await consumer_for(service, sqlite_transport, visibility_timeout=1.0, hooks=[hooks]).run()
    assert service.calls == ["slow"]
    assert hooks.seen == [("slow", 1)]


async def test_stop_finishes_running_and_hands_back_unstarted(
    sqlite_transport: SqliteTransport,
) -> None:
    # One group of five: the first runs, the other four wait in the consumer's hands.
    await enqueue(sqlite_transport, [invite(3, f"q{n}") for n in range(5)])
    service = RecordingService(delay=0.5)
    consumer = consumer_for(service, sqlite_transport, drain=False, wait_time_seconds=5)
    await consumer.start()
    await service.started.wait()
    await consumer.stop()
    assert service.calls == ["q0"]
    stats = await sqlite_transport.stats()
    # q0 finished and was deleted; the rest are visible again at once, none lost.
    assert (stats.visible, stats.in_flight) == (4, 0)
    remaining = await sqlite_transport.receive(10, wait_seconds=0)
    assert [m.receive_count for m in remaining] == [2, 2, 2, 2]


async def test_grace_period_over_hands_back_the_running_message(
    sqlite_transport: SqliteTransport,
) -> None:
    await enqueue(sqlite_transport, [invite(4, "stuck")])
    service = RecordingService(delay=30)
    consumer = consumer_for(service, sqlite_transport, drain=False, grace_period=0.2)
    await consumer.start()
    await service.started.wait()
    await consumer.stop()
    stats = await sqlite_transport.stats()
    assert (stats.visible, stats.in_flight) == (1, 0)


class RaisingHook(ConsumerHooks):
    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        raise RuntimeError("hook bug")


async def test_a_raising_hook_does_not_fail_the_operation(
    sqlite_transport: SqliteTransport,
) -> None:
    await enqueue(sqlite_transport, [invite(5, "h1")])
    service = RecordingService()
    await consumer_for(service, sqlite_transport, hooks=[RaisingHook()]).run()
    assert service.calls == ["h1"]
    stats = await sqlite_transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 0)


async def test_receive_errors_do_not_crash_the_consumer(sqlite_transport: SqliteTransport) -> None:
    await enqueue(sqlite_transport, [invite(6, "after-outage")])
    failures = 2

    class Flaky(CountingReceives):
        async def receive(self, max_messages: int = 10, **kw: object) -> list[ReceivedMessage]:
            nonlocal failures
            if failures:
                failures -= 1
                raise RetryableError("queue unreachable")
            return await super().receive(max_messages, **kw)

    service = RecordingService()
    await consumer_for(service, Flaky(sqlite_transport)).run()  # type: ignore[arg-type]
    assert service.calls == ["after-outage"]
