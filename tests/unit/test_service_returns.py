"""What a service's methods return: None is a plain success; any other value that is not an
Outcome is named once in the log, and the operation still counts as done."""

from __future__ import annotations

from typing import Any

from structlog.testing import capture_logs

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.observability.outcomes import OutcomeEvent, OutcomeHooks
from botqueue.operations import InviteUser, RemoveUser, VerifyPermissions
from botqueue.transports import SqliteTransport


class ReturningService:
    """Performs every operation and returns ``value`` (None: Python's "void")."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0

    async def invite_user(self, op: InviteUser) -> Any:
        self.calls += 1
        return self.value

    async def remove_user(self, op: RemoveUser) -> Any:
        self.calls += 1
        return self.value

    async def verify_permissions(self, op: VerifyPermissions) -> Any:
        self.calls += 1
        return self.value


async def run_three(transport: SqliteTransport, service: ReturningService) -> list[OutcomeEvent]:
    ops = [
        InviteUser(user_id=user, channel_id="-1001", subscription_id=f"s{user}", order_id="o")
        for user in (1, 2, 3)
    ]
    await BotQueueProducer(transport).enqueue_many(ops)
    events: list[OutcomeEvent] = []
    consumer = BotQueueConsumer(
        service,
        transport,
        drain=True,
        wait_time_seconds=0.2,
        hooks=[OutcomeHooks([events.append])],
    )
    await consumer.run()
    return events


async def test_a_service_returning_none_succeeded(sqlite_transport: SqliteTransport) -> None:
    service = ReturningService(None)
    with capture_logs() as logs:
        events = await run_three(sqlite_transport, service)
    assert service.calls == 3
    assert [event.status for event in events] == ["succeeded"] * 3
    assert not [line for line in logs if line["event"] == "hook raised"], logs
    assert not [line for line in logs if line["log_level"] in ("warning", "error")], logs
    done = [line for line in logs if line["event"] == "Bot operation done"]
    assert [line["status"] for line in done] == ["succeeded"] * 3
    stats = await sqlite_transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 0)


async def test_another_return_type_is_named_once_and_still_done(
    sqlite_transport: SqliteTransport,
) -> None:
    service = ReturningService({"ok": True})
    with capture_logs() as logs:
        events = await run_three(sqlite_transport, service)
    assert [event.status for event in events] == ["succeeded"] * 3
    assert not [line for line in logs if line["event"] == "hook raised"], logs
    named = [line for line in logs if line.get("returnedType") == "dict"]
    assert len(named) == 1, logs
    assert named[0]["log_level"] == "warning"
    assert named[0]["service"] == "ReturningService"
    assert (await sqlite_transport.stats()).dead_letters == 0
