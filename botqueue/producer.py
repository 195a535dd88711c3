"""BotQueueProducer: validates operations and puts them on the queue."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import structlog

from .errors import EnqueueError, OperationValidationError, TransportError
from .operations import (
    AnyOperation,
    InviteUser,
    RemoveReason,
    RemoveUser,
    VerifyPermissions,
    build_operation,
)
from .transports.base import OutgoingMessage, Transport
from .transports.configured import configured_transport

log = structlog.get_logger("botqueue.producer")

# SQS's MessageDeduplicationId: 1-128 alphanumeric or punctuation characters.
_DEDUP_ID = re.compile(r"[A-Za-z0-9!-/:-@\[-`{-~]{1,128}")

BATCH_SIZE = 10
"""SQS's largest send batch."""


def to_message(op: AnyOperation, idempotency_key: str | None = None) -> OutgoingMessage:
    """The queue message for an operation: its wire body, group and deduplication id."""
    return OutgoingMessage(
        body=op.to_json(),
        group_id=op.group_id,
        deduplication_id=idempotency_key or op.deduplication_id(),
    )


def _channel(channel_id: str | int) -> str | int:
    # Python callers often hold numeric chat ids as int; the wire format wants a string.
    return (
        str(channel_id)
        if isinstance(channel_id, int) and not isinstance(channel_id, bool)
        else channel_id
    )


class BotQueueProducer:
    """Enqueues invite, remove and verify operations; ``async with`` it, or call aclose().

    Every argument is validated before anything is sent: an invalid one raises
    OperationValidationError naming the field. Without a transport or ``queue_url`` it opens
    the configured queue (BOT_OPERATIONS_QUEUE_URL and BOT_OPERATIONS_DLQ_URL, else
    ``./botqueue.db``); a malformed setting raises ConfigurationError.
    """

    def __init__(
        self,
        transport: Transport | None = None,
        *,
        queue_url: str | None = None,
        dlq_url: str | None = None,
    ) -> None:
        self._owns_transport = transport is None
        self.transport = transport or configured_transport(queue_url, dlq_url)

    async def __aenter__(self) -> BotQueueProducer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport if this producer opened it."""
        if self._owns_transport:
            await self.transport.aclose()
            self._owns_transport = False

    async def enqueue_invite_user(
        self,
        user_id: int,
        channel_id: str | int,
        subscription_id: str,
        order_id: str,
        max_retries: int = 3,
        *,
        idempotency_key: str | None = None,
        invite_mode: str | None = None,
    ) -> str:
        """Enqueue an invite; return the message id.

        ``invite_mode`` is ``"link"`` or ``"join_request"``; None leaves it to the worker's
        TELEGRAM_INVITE_MODE.
        """
        op = build_operation(
            {
                "operationType": "INVITE_USER",
                "userId": user_id,
                "channelId": _channel(channel_id),
                "subscriptionId": subscription_id,
                "orderId": order_id,
                "maxRetries": max_retries,
                "inviteMode": invite_mode,
            }
        )
        return await self.enqueue(op, idempotency_key=idempotency_key)

    async def enqueue_remove_user(
        self,
        user_id: int,
        channel_id: str | int,
        subscription_id: str,
        reason: RemoveReason,
        max_retries: int = 3,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Enqueue a removal (reason: expiry, refund or cancellation); return the message id."""
        op = build_operation(
            {
                "operationType": "REMOVE_USER",
                "userId": user_id,
                "channelId": _channel(channel_id),
                "subscriptionId": subscription_id,
                "reason": reason,
                "maxRetries": max_retries,
            }
        )
        return await self.enqueue(op, idempotency_key=idempotency_key)

    async def enqueue_verify_permissions(
        self,
        channel_id: str | int,
        listing_id: str | None = None,
        max_retries: int = 3,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Enqueue a permission check of the bot in a channel; return the message id."""
        fields: dict[str, Any] = {
            "operationType": "VERIFY_PERMISSIONS",
            "channelId": _channel(channel_id),
            "maxRetries": max_retries,
        }
        if listing_id is not None:
            fields["listingId"] = listing_id
        return await self.enqueue(build_operation(fields), idempotency_key=idempotency_key)

    async def enqueue(self, op: AnyOperation, *, idempotency_key: str | None = None) -> str:
        """Enqueue one operation already built; return the message id."""
        if idempotency_key is not None and not _DEDUP_ID.fullmatch(idempotency_key):
            raise OperationValidationError(
                {"idempotencyKey": "must be 1-128 letters, digits or punctuation (SQS's rule)"}
            )
        (message_id,) = await self._send([op], [idempotency_key])
        return message_id

    async def enqueue_many(self, ops: Iterable[AnyOperation]) -> list[str]:
        """Enqueue operations in batches of 10; return their message ids in order.

        Raises:
            EnqueueError: some entries failed; it carries the ids of those that were sent.
        """
        items = list(ops)
        return await self._send(items, [None] * len(items))

    async def _send(self, ops: Sequence[AnyOperation], keys: Sequence[str | None]) -> list[str]:
        ids: dict[int, str] = {}
        failures: dict[int, str] = {}
        for start in range(0, len(ops), BATCH_SIZE):
            chunk = range(start, min(start + BATCH_SIZE, len(ops)))
            try:
                results = await self.transport.send_batch(
                    [to_message(ops[i], keys[i]) for i in chunk]
                )
            except TransportError as error:
                failures.update({i: str(error) for i in chunk})
                continue
            for i, result in zip(chunk, results, strict=True):
                if result.message_id is None:
                    failures[i] = result.error or "not sent"
                    continue
                ids[i] = result.message_id
                self._log(ops[i], result.message_id)
        if failures:
            raise EnqueueError(failures, ids)
        return [ids[i] for i in range(len(ops))]

    @staticmethod
    def _log(op: AnyOperation, message_id: str) -> None:
        fields: dict[str, Any] = {
            "operationType": op.operation_type,
            "messageId": message_id,
            "attempt": op.attempt_count,
            "channelId": op.channel_id,
        }
        if isinstance(op, InviteUser | RemoveUser):
            fields["subscriptionId"] = op.subscription_id
            fields["userId"] = op.user_id
        elif isinstance(op, VerifyPermissions) and op.listing_id:
            fields["listingId"] = op.listing_id
        log.info("Bot operation enqueued", **fields)
