"""Outcome events: one per finished operation, for the application to act on.

An event says what happened to an operation (succeeded, noop, failed for good, or
dead-lettered after its retries), with the detail the application needs: the invite link
sent, the rights the bot lacks, the error. OutcomeHooks builds them from the consumer's hooks
and hands each to its sinks (the outcomes queue publisher, the user's hook).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import structlog
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from ..consumer.hooks import ConsumerHooks, operation_fields
from ..errors import OperationError
from ..failure import iso_utc
from ..logs import redact_secrets, redact_value
from ..operations import AnyOperation
from ..service import Outcome
from ..transports.base import OutgoingMessage, ReceivedMessage

log = structlog.get_logger("botqueue.outcomes")

OutcomeEventStatus = Literal["succeeded", "noop", "failed", "dead_lettered"]
"""succeeded or noop (nothing was needed); failed: a permanent failure; dead_lettered: the
retries ran out, or the body was not an operation."""

OutcomeSink = Callable[["OutcomeEvent"], None]
"""Takes an event without blocking (it queues it, or starts a task)."""


class OutcomeEvent(BaseModel):
    """What became of one operation; camelCase JSON on the wire, like the operations."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    message_id: str
    """The operation's queue message id."""
    group_id: str
    """Its FIFO group: the (channel, user) pair, or the channel for a permission check."""
    operation_type: str | None
    """INVITE_USER, REMOVE_USER or VERIFY_PERMISSIONS (None if the body did not decode)."""
    operation: dict[str, Any] | None
    """The operation's wire body as sent (None if the body did not decode)."""
    status: OutcomeEventStatus
    detail: dict[str, Any] = {}
    """What the service reported: inviteLink and expiresAt, missingRights, reason, ..."""
    error: str | None = None
    """The failure's text (failed and dead_lettered), with the bot token removed."""
    error_type: str | None = None
    failure_kind: str | None = None
    """Why it went to the DLQ (permanent, exhausted, undecodable); None when not dead-lettered."""
    attempts: int
    first_attempt_at: str
    finished_at: str

    def to_json(self) -> str:
        """The event as camelCase JSON."""
        return self.model_dump_json(by_alias=True)

    def to_message(self) -> OutgoingMessage:
        """The event as a message for the outcomes queue: in its operation's group, and
        deduplicated by message id and status (a repeated delivery reports once)."""
        return OutgoingMessage(
            body=self.to_json(),
            group_id=self.group_id,
            deduplication_id=f"{self.message_id}-{self.status}"[:128],
        )


def build_event(
    op: AnyOperation | None,
    message: ReceivedMessage,
    status: OutcomeEventStatus,
    *,
    detail: Mapping[str, Any] | None = None,
    error: str | None = None,
    error_type: str | None = None,
    failure_kind: str | None = None,
) -> OutcomeEvent:
    """An event for a message that has just finished."""
    return OutcomeEvent(
        message_id=message.message_id,
        group_id=message.group_id,
        operation_type=op.operation_type if op is not None else None,
        operation=json.loads(message.body) if op is not None else None,
        status=status,
        # JSON-safe and token-free: the event goes to a queue and to user code.
        detail=json.loads(json.dumps(redact_value(dict(detail or {})), default=str)),
        error=redact_secrets(error) if error is not None else None,
        error_type=error_type,
        failure_kind=failure_kind,
        attempts=message.receive_count,
        first_attempt_at=iso_utc(message.first_received_at),
        finished_at=iso_utc(time.time()),
    )


class OutcomeHooks(ConsumerHooks):
    """Consumer hooks that turn every finished operation into one OutcomeEvent for ``sinks``."""

    def __init__(self, sinks: Sequence[OutcomeSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, event: OutcomeEvent, op: AnyOperation | None, message: ReceivedMessage) -> None:
        """Hand the event to every sink; one that raises is logged and the others still run."""
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as error:  # an outcome consumer must never fail an operation
                log.error(
                    "outcome sink raised",
                    sink=type(sink).__name__,
                    error=repr(error),
                    **operation_fields(op, message),
                )

    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        """Emit succeeded or noop, with the service's detail."""
        self.emit(build_event(op, message, outcome.status, detail=outcome.detail), op, message)

    def on_dead_letter(
        self, op: AnyOperation | None, message: ReceivedMessage, failure: Mapping[str, Any]
    ) -> None:
        """Emit failed (a permanent failure) or dead_lettered (retries used up, undecodable)."""
        kind = str(failure.get("kind", ""))
        event = build_event(
            op,
            message,
            "failed" if kind == "permanent" else "dead_lettered",
            detail=failure.get("detail"),
            error=failure.get("error"),
            error_type=failure.get("errorType"),
            failure_kind=kind or None,
        )
        self.emit(event, op, message)

    def on_dropped(self, op: AnyOperation, message: ReceivedMessage, error: BaseException) -> None:
        """Emit failed for a permanent failure deleted without a dead letter."""
        detail = error.detail if isinstance(error, OperationError) else None
        event = build_event(
            op, message, "failed", detail=detail, error=str(error), error_type=type(error).__name__
        )
        self.emit(event, op, message)
