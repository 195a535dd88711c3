"""``botqueue demo``: the whole pipeline on the embedded queue with a simulated bot."""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .consumer import BotQueueConsumer
from .errors import PermanentError, RetryableError
from .hooks import ConsumerHooks
from .operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions
from .producer import BotQueueProducer
from .retry import Backoff
from .service import Outcome
from .transports import SqliteTransport
from .transports.base import OutgoingMessage, ReceivedMessage


class SimulatedBotService:
    """An in-memory stand-in for Telegram: channels, members and a few scripted failures.

    ``@flaky_channel`` answers like a rate-limited API twice before it works; the bot is not
    an administrator of ``@lost_channel``, so membership changes there fail permanently.
    """

    def __init__(self) -> None:
        self.members: dict[str, set[int]] = {}
        self.calls: Counter[str] = Counter()

    async def invite_user(self, op: InviteUser) -> Outcome:
        """Add the user to the channel's members (a no-op if already there)."""
        self._check(op)
        members = self.members.setdefault(op.channel_id, set())
        if op.user_id in members:
            return Outcome("noop", {"reason": "already a member"})
        members.add(op.user_id)
        return Outcome("succeeded", {"inviteLink": f"https://t.me/+demo{op.subscription_id}"})

    async def remove_user(self, op: RemoveUser) -> Outcome:
        """Remove the user (a no-op if not a member)."""
        self._check(op)
        members = self.members.setdefault(op.channel_id, set())
        if op.user_id not in members:
            return Outcome("noop", {"reason": "not a member"})
        members.discard(op.user_id)
        return Outcome("succeeded", {"reason": op.reason})

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome:
        """Report whether the bot administers the channel."""
        self._check(op)
        verified = op.channel_id != "@lost_channel"
        return Outcome("succeeded", {"verified": verified})

    def _check(self, op: AnyOperation) -> None:
        self.calls[op.channel_id] += 1
        if op.channel_id == "@flaky_channel" and self.calls[op.channel_id] <= 2:
            raise RetryableError("Too Many Requests: retry after 1", retry_after=1)
        if op.channel_id == "@lost_channel" and not isinstance(op, VerifyPermissions):
            raise PermanentError(
                "Bad Request: not enough rights to restrict/unrestrict chat member"
            )


class _Printer(ConsumerHooks):
    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        click.echo(f"  done     {_describe(op)} -> {outcome.status} {dict(outcome.detail)}")

    def on_retry(
        self, op: AnyOperation, message: ReceivedMessage, error: BaseException, delay: float
    ) -> None:
        click.echo(
            f"  retry    {_describe(op)} (attempt {message.receive_count}: {error}; "
            f"again in {delay:.1f} s)"
        )

    def on_dead_letter(
        self, op: AnyOperation | None, message: ReceivedMessage, failure: Mapping[str, Any]
    ) -> None:
        what = _describe(op) if op else "undecodable body"
        click.echo(f"  DLQ      {what} ({failure['kind']}: {failure['error']})")


def _describe(op: AnyOperation) -> str:
    if isinstance(op, VerifyPermissions):
        return f"{op.operation_type} {op.channel_id}"
    return f"{op.operation_type} user {op.user_id} in {op.channel_id}"


async def run_demo(db: Path | None) -> dict[str, Any]:
    """Enqueue a mixed batch, run a worker until the queue drains, return the final stats."""
    folder = tempfile.TemporaryDirectory(prefix="botqueue-demo-") if db is None else None
    path = db or Path(folder.name if folder else ".") / "demo.db"
    transport = SqliteTransport(f"sqlite:///{path}")
    try:
        async with BotQueueProducer(transport) as producer:
            click.echo(f"Embedded queue: {path}")
            for user in (1001, 1002, 1003):
                await producer.enqueue_invite_user(user, "@premium_signals", f"sub-{user}", "o-1")
            again = await producer.enqueue_invite_user(1001, "@premium_signals", "sub-1001", "o-1")
            click.echo(f"Repeated invite for user 1001 deduplicated to message {again}")
            await producer.enqueue_remove_user(1002, "@premium_signals", "sub-1002", "refund")
            await producer.enqueue_invite_user(2001, "@flaky_channel", "sub-2001", "o-2")
            await producer.enqueue_remove_user(3001, "@lost_channel", "sub-3001", "expiry")
            await producer.enqueue_verify_permissions("@premium_signals", "listing-7")
            await producer.enqueue_verify_permissions("@lost_channel", "listing-8")
            await transport.send_batch([OutgoingMessage("{not json", "raw", "raw-1")])
            click.echo(f"Queued: {json.dumps((await transport.stats()).as_dict())}\nWorking:")
            consumer = BotQueueConsumer(
                SimulatedBotService(),
                transport,
                hooks=[_Printer()],
                log_operations=False,
                # Short backoff so the demo finishes in seconds; production starts at 1 s.
                backoff=Backoff(base=0.25),
                drain=True,
                wait_time_seconds=1.0,
            )
            await consumer.run()
            stats = (await transport.stats()).as_dict()
            click.echo(f"Drained: {json.dumps(stats)}\nDead letters (botqueue dlq list):")
            for letter in await transport.dlq_list():
                click.echo(f"  {letter.body[:60]}... {json.dumps(letter.failure)}")
            return stats
    finally:
        await transport.aclose()
        if folder is not None:
            folder.cleanup()


def main(db: Path | None) -> None:
    """Run the demo and print what happens."""
    asyncio.run(run_demo(db))
