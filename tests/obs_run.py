"""A mixed run for the observability tests: one operation per script of tests.obs_services,
plus an undecodable body, and a consumer that drains it quickly."""

from __future__ import annotations

from collections.abc import Sequence

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.consumer import ConsumerHooks
from botqueue.operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions
from botqueue.retry import Backoff
from botqueue.transports import OutgoingMessage, Transport
from tests.obs_services import ScriptedService

CHANNEL = "-1001000000001"
UNDECODABLE = "this is not an operation"


def mixed_operations() -> list[AnyOperation]:
    """ok and noop invites, a flaky and a permanently failing removal, an invite whose
    retries run out, and a permission check that raises unexpectedly until dead-lettered."""
    return [
        InviteUser(user_id=11, channel_id=CHANNEL, subscription_id="ok-1", order_id="o1"),
        InviteUser(user_id=12, channel_id=CHANNEL, subscription_id="noop-1", order_id="o2"),
        RemoveUser(user_id=13, channel_id=CHANNEL, subscription_id="flaky-1", reason="expiry"),
        RemoveUser(user_id=14, channel_id=CHANNEL, subscription_id="perm-1", reason="refund"),
        InviteUser(
            user_id=15, channel_id=CHANNEL, subscription_id="dead-1", order_id="o3", max_retries=1
        ),
        VerifyPermissions(channel_id=CHANNEL, listing_id="boom-1", max_retries=1),
    ]


EXPECTED_STATUS = {
    "ok-1": "succeeded",
    "noop-1": "noop",
    "flaky-1": "succeeded",
    "perm-1": "failed",
    "dead-1": "dead_lettered",
    "boom-1": "dead_lettered",
}
"""The outcome status of each operation of mixed_operations(), by its script name."""


async def fill(transport: Transport, ops: Sequence[AnyOperation] | None = None) -> list[str]:
    """Enqueue the operations and one undecodable body; return the operations' message ids."""
    ids = await BotQueueProducer(transport).enqueue_many(mixed_operations() if ops is None else ops)
    await transport.send_batch(
        [OutgoingMessage(body=UNDECODABLE, group_id="junk", deduplication_id="junk-1")]
    )
    return ids


async def drain(
    transport: Transport,
    hooks: Sequence[ConsumerHooks],
    *,
    service: object | None = None,
    drop_permanent: bool = False,
    log_operations: bool = True,
) -> BotQueueConsumer:
    """Run a consumer until the queue is empty, with retries 20 ms apart."""
    consumer = BotQueueConsumer(
        service or ScriptedService(),  # type: ignore[arg-type]
        transport,
        hooks=hooks,
        drain=True,
        wait_time_seconds=0.2,
        backoff=Backoff(base=0.02),
        drop_permanent=drop_permanent,
        log_operations=log_operations,
    )
    await consumer.run()
    return consumer
