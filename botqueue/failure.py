"""The failure record written beside every dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

FailureKind = Literal["exhausted", "permanent", "undecodable", "max_receive_count"]
"""Why a message was dead-lettered: retries used up, a permanent error, a body that does not
decode, or (the queue's safety net) more receives than the redrive policy allows."""


def iso_utc(epoch_seconds: float) -> str:
    """Format epoch seconds as ISO-8601 UTC with milliseconds."""
    moment = datetime.fromtimestamp(epoch_seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """Why and when a message failed; stored as JSON in the DLQ entry's attributes."""

    error: str
    kind: FailureKind
    attempts: int
    first_attempt_at: float
    last_attempt_at: float
    original_message_id: str
    error_type: str | None = None
    operation_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The record as camelCase JSON fields, times in ISO-8601 UTC."""
        record: dict[str, Any] = {
            "error": self.error,
            "kind": self.kind,
            "attempts": self.attempts,
            "firstAttemptAt": iso_utc(self.first_attempt_at),
            "lastAttemptAt": iso_utc(self.last_attempt_at),
            "originalMessageId": self.original_message_id,
        }
        if self.error_type:
            record["errorType"] = self.error_type
        if self.operation_type:
            record["operationType"] = self.operation_type
        return record
