"""The dead-letter queue on SQS: list, redrive and purge, by receiving, since SQS cannot peek.

A listing receives every dead letter with a short visibility timeout, holding them in flight so
that each receive returns new ones, then releases them all (visibility 0) in the order received.
On a FIFO queue that reorders nothing: order is kept by sequence within each group, and a
released message is the next of its group again. The costs, documented in docs/sqs.md: every
listing raises the dead letters' receive counts (harmless, a DLQ has no redrive policy of its
own); while it runs they are invisible to other readers; and because FIFO holds back a group's
later messages while earlier ones are in flight, at most one receive's worth (10) of each group
can be seen until those are redriven or purged.

Redrive does not use StartMessageMoveTask: it re-sends with the original deduplication id, which
a FIFO queue silently drops within its 5-minute window. We send each message with a fresh id,
in order, and delete it from the DLQ only after its send succeeded.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import structlog

from ..errors import TransportError
from .base import (
    FAILURE_ATTRIBUTE,
    MAX_MESSAGE_BYTES,
    DeadLetter,
    OutgoingMessage,
    ReceivedMessage,
)
from .sqs_batch import message_size

if TYPE_CHECKING:
    from .sqs import SqsTransport

log = structlog.get_logger("botqueue.transport")

HOLD_SECONDS = 60
"""Visibility timeout of dead letters held by a listing or redrive until it releases them."""
POLL_SECONDS = 1
"""A short long poll: unlike a short poll it asks every SQS server, so empty means empty."""


async def _receive_round(
    transport: SqsTransport, url: str, seen: set[str]
) -> tuple[list[ReceivedMessage], list[ReceivedMessage], bool]:
    """One receive: (everything received, the messages not seen before, whether the queue is
    exhausted or has wrapped around)."""
    batch = await transport.receive_from(url, 10, POLL_SECONDS, HOLD_SECONDS)
    fresh = [m for m in batch if m.message_id not in seen]
    seen.update(m.message_id for m in batch)
    # A message seen before came back because its hold ran out: everything has been seen.
    return batch, fresh, not batch or len(fresh) < len(batch)


async def _release(transport: SqsTransport, url: str, held: Sequence[ReceivedMessage]) -> None:
    """Make held messages visible again, in the order received."""
    if not held:
        return
    try:
        await transport.change_visibility_on(url, [(m.receipt, 0) for m in held])
    except TransportError as error:
        # They become visible by themselves when the hold ends.
        log.warning("could not release dead letters", error=str(error), count=len(held))


def dead_letter_entry(message: ReceivedMessage, failure: Mapping[str, Any]) -> OutgoingMessage:
    """The DLQ copy of a message with its failure record, within SQS's size limit.

    A body near the limit leaves little room: the record then keeps its kind, attempts and
    original id and as much of the error as fits; a body at the limit goes without it (the
    record is logged, and the outcome event carries it), since SQS would refuse the copy and
    the message would cycle until the redrive policy moved it without any record.
    """
    entry = OutgoingMessage(
        body=message.body,
        group_id=message.group_id,
        # The original id is unique, so a retried dead-lettering is not written twice.
        deduplication_id=f"dlq-{message.message_id}",
        attributes={FAILURE_ATTRIBUTE: json.dumps(dict(failure), default=str)},
    )
    excess = message_size(entry) - MAX_MESSAGE_BYTES
    if excess <= 0:
        return entry
    keep = ("kind", "attempts", "originalMessageId", "errorType", "operationType")
    short = {key: failure[key] for key in keep if key in failure} | {"truncated": True}
    error = str(failure.get("error", ""))
    while True:
        record = json.dumps(short | {"error": error}, default=str)
        excess = message_size(entry) - len(entry.attributes[FAILURE_ATTRIBUTE]) + len(record)
        excess -= MAX_MESSAGE_BYTES
        if excess <= 0:
            return OutgoingMessage(
                entry.body, entry.group_id, entry.deduplication_id, {FAILURE_ATTRIBUTE: record}
            )
        if not error:
            break
        # Each character costs at least one byte, so cutting ``excess`` of them fits or
        # empties the error.
        error = error[: max(len(error) - excess, 0)]
    log.warning(
        "dead letter written without its failure record: its body leaves no room",
        messageId=message.message_id,
        failure=dict(failure),
    )
    return OutgoingMessage(entry.body, entry.group_id, entry.deduplication_id)


def _failure_of(message: ReceivedMessage) -> dict[str, Any] | None:
    raw = message.attributes.get(FAILURE_ATTRIBUTE)
    if not raw:
        return None
    try:
        record: dict[str, Any] = json.loads(raw)
    except (ValueError, RecursionError):
        return {"error": raw}
    return record if isinstance(record, dict) else {"error": raw}


async def list_dead_letters(transport: SqsTransport, limit: int | None = None) -> list[DeadLetter]:
    """Every dead letter, oldest first, with its failure record; all are released afterwards."""
    url = await transport.dlq_url()
    held: list[ReceivedMessage] = []  # every receipt, to release
    unique: list[ReceivedMessage] = []
    seen: set[str] = set()
    try:
        done = False
        while not done and (limit is None or len(unique) < limit):
            batch, fresh, done = await _receive_round(transport, url, seen)
            held += batch
            unique += fresh
    finally:
        await _release(transport, url, held)
    # A stable sort: within a group the received order is the queue order, and it is kept.
    letters = sorted(
        (DeadLetter(m.message_id, m.body, m.group_id, m.sent_at, _failure_of(m)) for m in unique),
        key=lambda letter: letter.sent_at,
    )
    return letters if limit is None else letters[:limit]


async def redrive(transport: SqsTransport, message_ids: Sequence[str] | None = None) -> int:
    """Move dead letters (all, or these ids) to the main queue; return how many moved."""
    url = await transport.dlq_url()
    wanted = None if message_ids is None else set(message_ids)
    held: list[ReceivedMessage] = []  # received, not moved: released at the end
    seen: set[str] = set()
    blocked: set[str] = set()  # groups with a failed send: later messages must not overtake
    moved = 0
    try:
        done = False
        while not done and (wanted is None or moved < len(wanted)):
            batch, fresh, done = await _receive_round(transport, url, seen)
            held += batch
            chosen = [
                m
                for m in fresh
                if (wanted is None or m.message_id in wanted) and m.group_id not in blocked
            ]
            if not chosen:
                continue
            results = await transport.send_to(
                transport.url,
                [
                    OutgoingMessage(m.body, m.group_id, f"redrive-{uuid.uuid4().hex}")
                    for m in chosen
                ],
            )
            sent = [m for m, result in zip(chosen, results, strict=True) if result.message_id]
            for message, result in zip(chosen, results, strict=True):
                if result.message_id is None:
                    blocked.add(message.group_id)
                    log.warning(
                        "redrive send failed", messageId=message.message_id, error=result.error
                    )
            # Deleted only after the send succeeded: a crash in between leaves a copy, never a
            # loss. A failed delete leaves one too; the message is on the main queue all the same.
            await transport.delete_from(url, [m.receipt for m in sent])
            moved += len(sent)
            gone = {m.receipt for m in sent}
            held = [m for m in held if m.receipt not in gone]
    finally:
        await _release(transport, url, held)
    return moved


async def purge(transport: SqsTransport) -> int:
    """Receive and delete every dead letter (not PurgeQueue: it cannot count, and allows one
    call a minute); messages another reader holds in flight at the time are not seen."""
    url = await transport.dlq_url()
    deleted = 0
    while batch := await transport.receive_from(url, 10, POLL_SECONDS, HOLD_SECONDS):
        failed = await transport.delete_from(url, [m.receipt for m in batch])
        deleted += len(batch) - len(failed)
    return deleted
