"""What the worker records of Telegram's answers: DLQ records and outcome events carry the
reason code, Telegram's words and, for an invite that created a link, the link and whether it
is still valid. The consumer, the embedded queue and the Telegram service against the sandbox.
"""

from __future__ import annotations

from typing import Any

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.observability.outcomes import OutcomeEvent, OutcomeHooks
from botqueue.operations import AnyOperation, InviteUser, RemoveUser
from botqueue.sandbox import SandboxControl
from botqueue.telegram.service import TelegramBotService
from botqueue.transports import SqliteTransport

PREMIUM = "-1001000000001"


async def run(
    transport: SqliteTransport, service: TelegramBotService, op: AnyOperation
) -> tuple[dict[str, Any], OutcomeEvent]:
    """Enqueue ``op``, drain the queue, return its one dead letter's record and its event."""
    await BotQueueProducer(transport).enqueue(op)
    events: list[OutcomeEvent] = []
    consumer = BotQueueConsumer(
        service,
        transport,
        drain=True,
        wait_time_seconds=0.2,
        log_operations=False,
        hooks=[OutcomeHooks([events.append])],
    )
    await consumer.run()
    (letter,) = await transport.dlq_list()
    (event,) = events
    return dict(letter.failure), event


async def test_an_unconfirmed_removal_is_a_permanent_failure_with_its_reason(
    sqlite_transport: SqliteTransport, service: TelegramBotService, control: SandboxControl
) -> None:
    await control.inject_fault("getChatMember", 400, "Bad Request: PARTICIPANT_ID_INVALID")
    await control.inject_fault("banChatMember", 400, "Bad Request: user not found")
    op = RemoveUser(user_id=1002, channel_id=PREMIUM, subscription_id="s-1", reason="refund")
    record, event = await run(sqlite_transport, service, op)
    assert record["kind"] == "permanent"
    assert record["detail"]["reason"] == "user_not_found"
    assert record["detail"]["memberLookupError"] == "Bad Request: PARTICIPANT_ID_INVALID"
    assert "Bad Request: PARTICIPANT_ID_INVALID" in record["error"]
    assert event.status == "failed"
    assert event.detail["reason"] == "user_not_found"
    assert 1002 in (await control.members(PREMIUM))["members"]  # still in: not done


async def test_an_invite_that_ran_out_of_retries_carries_its_revoked_link(
    sqlite_transport: SqliteTransport, service: TelegramBotService, control: SandboxControl
) -> None:
    await control.inject_fault("sendMessage", 502, "Bad Gateway")
    op = InviteUser(
        user_id=1004, channel_id=PREMIUM, subscription_id="s-1", order_id="o", max_retries=0
    )
    record, event = await run(sqlite_transport, service, op)
    assert record["kind"] == "exhausted"
    link = record["detail"]["inviteLink"]
    assert record["detail"]["linkValid"] is False
    assert event.status == "dead_lettered"
    assert event.detail["inviteLink"] == link and event.detail["linkValid"] is False


async def test_an_undelivered_invite_keeps_a_valid_link_for_the_application(
    sqlite_transport: SqliteTransport, service: TelegramBotService, control: SandboxControl
) -> None:
    op = InviteUser(user_id=1006, channel_id=PREMIUM, subscription_id="s-1", order_id="o")
    record, event = await run(sqlite_transport, service, op)  # 1006 blocked the bot
    assert record["kind"] == "permanent"
    assert record["detail"]["reason"] == "bot_blocked"
    assert record["detail"]["linkValid"] is True
    assert event.detail["linkValid"] is True
    assert await control.join(1006, event.detail["inviteLink"]) == "member"
