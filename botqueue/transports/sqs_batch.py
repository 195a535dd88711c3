"""SQS batch requests entry by entry: sizes, per-entry retries, and message conversion."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import MAX_MESSAGE_BYTES, OutgoingMessage, ReceivedMessage

BATCH_SIZE = 10
"""SQS's largest batch, for every batch action."""
ENTRY_ATTEMPTS = 5
"""Rounds a batch entry that failed transiently is tried in, the first included."""
TRANSIENT_ENTRY_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestThrottled",
        "ThrottlingException",
        "Throttling",
        "KmsThrottled",
        "KMS.ThrottlingException",
    }
)
"""Per-entry failure codes worth another try. SenderFault alone is not trusted: LocalStack
marks an invalid receipt handle as a server fault."""
SYSTEM_ATTRIBUTES = [
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
    "SentTimestamp",
    "MessageGroupId",
    "SequenceNumber",
]
"""What every receive asks for: the attempt number, the times and the FIFO group."""

Call = Callable[[list[dict[str, Any]]], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class EntryResult:
    """One batch entry's outcome: the Successful record, or an error text."""

    success: Mapping[str, Any] | None = None
    error: str | None = None


def is_transient(failure: Mapping[str, Any]) -> bool:
    """Whether a batch entry's failure may succeed if sent again."""
    code = str(failure.get("Code", ""))
    return code in TRANSIENT_ENTRY_CODES or "Throttl" in code


async def run_batch(
    call: Call,
    entries: Sequence[dict[str, Any]],
    *,
    group_of: Callable[[dict[str, Any]], str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[EntryResult]:
    """Send up to 10 entries, retrying transient per-entry failures; one result per entry.

    With ``group_of`` (sends to a FIFO queue), a failed entry is not sent again once a later
    entry of its group went through: the retry would land behind it and break the order.
    """
    results: dict[int, EntryResult] = {}
    pending = list(range(len(entries)))
    for round_number in range(ENTRY_ATTEMPTS):
        if round_number:
            # Jittered, so a fleet of workers does not retry in lockstep.
            await sleep(min(0.05 * 2**round_number, 1.0) * (0.5 + random.random() / 2))
        request = [{**entries[i], "Id": str(i)} for i in pending]
        response = await call(request)
        for success in response.get("Successful", []):
            results[int(success["Id"])] = EntryResult(success=success)
        retry: list[int] = []
        last_round = round_number == ENTRY_ATTEMPTS - 1
        for failure in response.get("Failed", []):
            index = int(failure["Id"])
            reason = f"{failure.get('Code', 'Failed')}: {failure.get('Message', '')}".strip()
            if (
                is_transient(failure)
                and not last_round
                and not _overtaken(index, entries, results, group_of)
            ):
                retry.append(index)
            else:
                results[index] = EntryResult(error=reason)
        pending = sorted(retry)
        if not pending:
            break
    return [
        results.get(i, EntryResult(error="no result for this entry")) for i in range(len(entries))
    ]


def _overtaken(
    index: int,
    entries: Sequence[dict[str, Any]],
    results: Mapping[int, EntryResult],
    group_of: Callable[[dict[str, Any]], str] | None,
) -> bool:
    if group_of is None:
        return False
    group = group_of(entries[index])
    return any(
        later > index and result.success is not None and group_of(entries[later]) == group
        for later, result in results.items()
    )


def message_size(message: OutgoingMessage) -> int:
    """Bytes SQS counts against its size limit: the body plus each attribute's name, type and
    value."""
    size = len(message.body.encode())
    for name, value in message.attributes.items():
        size += len(name.encode()) + len("String") + len(value.encode())
    return size


def size_batches(sizes: Sequence[int]) -> list[list[int]]:
    """Split entry indexes, in order, into batches of at most 10 entries and 1 MiB in total
    (SQS rejects a whole batch over either limit)."""
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for index, size in enumerate(sizes):
        if current and (len(current) == BATCH_SIZE or total + size > MAX_MESSAGE_BYTES):
            batches.append(current)
            current, total = [], 0
        current.append(index)
        total += size
    if current:
        batches.append(current)
    return batches


def send_entry(message: OutgoingMessage) -> dict[str, Any]:
    """A SendMessageBatch entry (without its Id)."""
    entry: dict[str, Any] = {
        "MessageBody": message.body,
        "MessageGroupId": message.group_id,
        "MessageDeduplicationId": message.deduplication_id,
    }
    if message.attributes:
        entry["MessageAttributes"] = {
            name: {"DataType": "String", "StringValue": value}
            for name, value in message.attributes.items()
        }
    return entry


def whole_seconds(seconds: float, top: int) -> int:
    """SQS takes whole seconds: round up (a 0.5 s wait or timeout must not become 0), clamp."""
    return max(0, min(top, math.ceil(seconds)))


def to_received(raw: Mapping[str, Any]) -> ReceivedMessage:
    """A ReceivedMessage from one entry of a ReceiveMessage response."""
    system = raw.get("Attributes", {})
    sent_ms = int(system.get("SentTimestamp", 0))
    attributes = {
        name: str(value["StringValue"])
        for name, value in raw.get("MessageAttributes", {}).items()
        if "StringValue" in value
    }
    return ReceivedMessage(
        message_id=raw["MessageId"],
        receipt=raw["ReceiptHandle"],
        body=raw["Body"],
        group_id=system.get("MessageGroupId", ""),
        receive_count=int(system.get("ApproximateReceiveCount", 1)),
        sent_at=sent_ms / 1000,
        first_received_at=int(system.get("ApproximateFirstReceiveTimestamp", sent_ms)) / 1000,
        attributes=attributes,
    )
