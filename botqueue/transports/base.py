"""The one narrow interface every queue transport implements, and the data it carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

MAX_MESSAGE_BYTES = 1024 * 1024
"""SQS's message size limit (1 MiB, body plus attributes); the embedded queue enforces it too."""

FAILURE_ATTRIBUTE = "botqueue-failure"
"""Message attribute that carries a dead letter's failure record (JSON)."""


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to send: body, FIFO group, deduplication id and optional attributes."""

    body: str
    group_id: str
    deduplication_id: str
    attributes: Mapping[str, str] = field(default_factory=dict)


def invalid_text(message: OutgoingMessage) -> str | None:
    """Why a message cannot be sent as text (a lone surrogate is not UTF-8), or None."""
    parts = (message.body, message.group_id, message.deduplication_id, *message.attributes.keys())
    for part in (*parts, *message.attributes.values()):
        try:
            part.encode()
        except UnicodeEncodeError as error:
            # One entry's fault, answered as SQS answers its own invalid characters, so the
            # rest of its batch is still sent.
            return f"InvalidMessageContents: not valid Unicode text ({error.reason})"
    return None


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one entry of a send batch: a message id or an error."""

    message_id: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message handed out by a receive; ``receipt`` identifies this delivery."""

    message_id: str
    receipt: str
    body: str
    group_id: str
    receive_count: int
    sent_at: float
    first_received_at: float
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message on the dead-letter queue with its failure record, read without consuming it."""

    message_id: str
    body: str
    group_id: str
    sent_at: float
    failure: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Approximate counts for the main queue and its DLQ."""

    visible: int
    in_flight: int
    dead_letters: int
    oldest_age_seconds: float

    def as_dict(self) -> dict[str, float | int]:
        """The stats as a JSON-ready mapping."""
        return {
            "visible": self.visible,
            "in_flight": self.in_flight,
            "dead_letters": self.dead_letters,
            "oldest_age_seconds": round(self.oldest_age_seconds, 3),
        }


@runtime_checkable
class Transport(Protocol):
    """A FIFO queue with a dead-letter queue, as SQS FIFO defines them."""

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send up to 10 messages; one result per entry, in order."""
        ...

    async def receive(
        self,
        max_messages: int = 10,
        *,
        wait_seconds: float = 20.0,
        visibility_timeout: float | None = None,
    ) -> list[ReceivedMessage]:
        """Long-poll for up to ``max_messages``; return as soon as any are available."""
        ...

    async def delete_batch(self, receipts: Sequence[str]) -> list[str]:
        """Delete delivered messages; return the receipts that could not be deleted."""
        ...

    async def change_visibility_batch(self, changes: Sequence[tuple[str, float]]) -> list[str]:
        """Set (receipt, seconds from now) visibility; return the receipts that failed."""
        ...

    async def dead_letter(self, message: ReceivedMessage, failure: Mapping[str, Any]) -> None:
        """Write the message and its failure record to the DLQ, then delete it from the queue."""
        ...

    async def stats(self) -> QueueStats:
        """Approximate counts of visible, in-flight and dead-lettered messages."""
        ...

    async def dlq_list(self, limit: int | None = None) -> list[DeadLetter]:
        """Read dead letters, oldest first, without consuming or reordering them."""
        ...

    async def dlq_redrive(self, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters (all, or these ids) back in order with fresh deduplication ids."""
        ...

    async def dlq_purge(self) -> int:
        """Delete every dead letter; return how many were deleted."""
        ...

    async def aclose(self) -> None:
        """Release connections and threads."""
        ...
