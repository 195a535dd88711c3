"""An embedded queue made for the dashboard's browser tests: real dead letters of each kind,
written by a real consumer, and a few operations still waiting or in flight.

The dead letters are the worker's own (its failure records, reason codes and details), not
records written by hand: the invite and the removal fail in the real Telegram service against
the Bot API sandbox, so the dashboard is tested on what an operator would really see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions
from botqueue.retry import Backoff
from botqueue.sandbox import SandboxServer
from botqueue.service import BotService
from botqueue.telegram.errors import TelegramRetryableError
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService
from botqueue.transports import OutgoingMessage, SqliteTransport
from tests.services import RecordingService

T = TypeVar("T")

SCRIPT_BODY = "<script>document.title='pwned'</script>"
PENDING_USERS = (201, 202, 203)
"""Invites left on the queue; the first is received and held, so one is in flight."""


@dataclass(frozen=True)
class SeededQueue:
    """The queue's URL, the DLQ message id of each seeded dead letter by name, the
    undelivered invite link the sandbox created, and the bot token that made the letters."""

    url: str
    letters: dict[str, str]
    invite_link: str
    bot_token: str


PREMIUM = "-1001000000001"
"""The sandbox's channel where the bot may invite and restrict."""
VIP = "-1001000000002"
"""The sandbox's supergroup where the bot may invite but not restrict."""
FINN, ANN = 1006, 1001
"""In the sandbox's default world Finn blocked the bot; Ann is a member of VIP."""


def server_error(op: AnyOperation, call_number: int) -> None:
    """Every attempt fails as a 502 from Telegram would (retryable, so it exhausts)."""
    raise TelegramRetryableError("Bad Gateway", reason="server_or_network")


async def drain(transport: SqliteTransport, service: BotService) -> None:
    """Run a consumer with ``service`` until the queue is empty."""
    consumer = BotQueueConsumer(
        service,
        transport,
        drain=True,
        wait_time_seconds=0.2,
        backoff=Backoff(base=0.05),
        log_operations=False,
    )
    await asyncio.wait_for(consumer.run(), 60)


async def telegram_dead_letters(transport: SqliteTransport) -> str:
    """Two permanent failures from the real Telegram service against the Bot API sandbox:
    an invite whose link was created but not delivered (Finn blocked the bot), and a removal
    from a chat where the bot may not restrict. Returns the bot token used."""
    await BotQueueProducer(transport).enqueue_many(
        [
            InviteUser(user_id=FINN, channel_id=PREMIUM, subscription_id="sub-finn",
                       order_id="order-finn"),
            RemoveUser(user_id=ANN, channel_id=VIP, subscription_id="sub-ann", reason="expiry"),
        ]
    )  # fmt: skip
    async with SandboxServer() as sandbox:
        limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000, per_user_chat=100))
        service = TelegramBotService(
            sandbox.token, api_url=sandbox.url, request_timeout=5.0, limiter=limiter
        )
        await service.start()
        try:
            await drain(transport, service)
        finally:
            await service.aclose()
        return sandbox.token


async def seed(url: str) -> SeededQueue:
    """Fill the queue at ``url``: four dead letters (permanent twice, exhausted, undecodable),
    two invites visible and one in flight."""
    async with SqliteTransport(url) as transport:
        token = await telegram_dead_letters(transport)
        producer = BotQueueProducer(transport)
        await producer.enqueue(
            VerifyPermissions(channel_id=PREMIUM, listing_id="listing-3", max_retries=1)
        )
        await transport.send_batch(
            [OutgoingMessage(body=SCRIPT_BODY, group_id="hostile", deduplication_id="script")]
        )
        await drain(transport, RecordingService(server_error))
        listed = {name_of(letter.body): letter for letter in await transport.dlq_list()}
        assert sorted(listed) == ["invite", "remove", "script", "verify"], listed
        invite = listed["invite"].failure or {}
        link = invite["detail"]["inviteLink"]
        await producer.enqueue_many(
            InviteUser(
                user_id=user,
                channel_id="-1001009",
                subscription_id=f"sub-{user}",
                order_id=f"order-{user}",
            )
            for user in PENDING_USERS
        )
        # Held for an hour: counted in flight for the whole test.
        held = await transport.receive(1, wait_seconds=1, visibility_timeout=3600)
        assert len(held) == 1
    letters = {name: letter.message_id for name, letter in listed.items()}
    return SeededQueue(url, letters, link, token)


def name_of(body: str) -> str:
    """Which seeded dead letter a body is."""
    if body == SCRIPT_BODY:
        return "script"
    for name, wire in (
        ("invite", "INVITE_USER"),
        ("remove", "REMOVE_USER"),
        ("verify", "VERIFY_PERMISSIONS"),
    ):
        if f'"operationType":"{wire}"' in body.replace(" ", ""):
            return name
    return body


def on_queue(url: str, work: Callable[[SqliteTransport], Awaitable[T]]) -> T:
    """Run ``work(transport)`` on the queue at ``url`` from a synchronous test."""

    async def opened() -> T:
        async with SqliteTransport(url) as transport:
            return await work(transport)

    return asyncio.run(opened())


async def enqueue_invites(transport: SqliteTransport, users: range) -> None:
    """Put one invite per user on the queue (each its own group, so all visible at once)."""
    await BotQueueProducer(transport).enqueue_many(
        InviteUser(
            user_id=user,
            channel_id="-1001010",
            subscription_id=f"more-{user}",
            order_id=f"order-{user}",
        )
        for user in users
    )
