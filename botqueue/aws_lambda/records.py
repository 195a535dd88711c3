"""SQS event records as Lambda delivers them, turned into what the processor takes.

A record carries what a ReceiveMessage entry carries, renamed: ``messageId``,
``receiptHandle``, ``body``, the system ``attributes`` (ApproximateReceiveCount,
MessageGroupId, the timestamps in milliseconds) and ``messageAttributes`` in Lambda's own
shape (``{"stringValue": ..., "dataType": "String"}``); ``eventSourceARN`` names the queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import Settings
from ..errors import ConfigurationError
from ..transports.base import ReceivedMessage
from ..transports.sqs_client import resolve_client_config

BatchResponse = dict[str, list[dict[str, str]]]
"""``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}``: Lambda's partial response."""


class LambdaContext(Protocol):
    """The part of Lambda's context object the handler reads."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the function times out."""
        ...


@dataclass(frozen=True, slots=True)
class QueueArn:
    """An SQS queue ARN, ``arn:PARTITION:sqs:REGION:ACCOUNT:NAME``, in its parts."""

    partition: str
    region: str
    account: str
    name: str

    @classmethod
    def parse(cls, arn: str) -> QueueArn:
        """The parts of an SQS queue ARN.

        Raises:
            ConfigurationError: it is not one (the function is mapped to another source).
        """
        parts = arn.split(":")
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs" or not all(parts[3:]):
            raise ConfigurationError(f"eventSourceARN is not an SQS queue ARN: {arn!r}")
        return cls(parts[1], parts[3], parts[4], parts[5])

    def queue_url(self, settings: Settings) -> str:
        """The queue's URL: BOT_OPERATIONS_QUEUE_URL when set; else on the endpoint that
        SQS_ENDPOINT / USE_LOCALSTACK name; else the region's AWS endpoint."""
        if settings.bot_operations_queue_url:
            return settings.bot_operations_queue_url
        endpoint = resolve_client_config(None, region=self.region).endpoint_url
        if endpoint is None:
            suffix = "amazonaws.com.cn" if self.partition == "aws-cn" else "amazonaws.com"
            endpoint = f"https://sqs.{self.region}.{suffix}"
        return f"{endpoint.rstrip('/')}/{self.account}/{self.name}"


def _field(record: Mapping[str, Any], name: str) -> Any:
    try:
        return record[name]
    except KeyError:
        raise ConfigurationError(f"event record without {name}: not an SQS event") from None


def received_message(record: Mapping[str, Any]) -> ReceivedMessage:
    """The ReceivedMessage of one record; ApproximateReceiveCount is the attempt number.

    Raises:
        ConfigurationError: the record lacks an SQS record's fields.
    """
    system: Mapping[str, Any] = record.get("attributes") or {}
    sent_ms = int(system.get("SentTimestamp", 0))
    attributes = {
        name: str(value["stringValue"])
        for name, value in (record.get("messageAttributes") or {}).items()
        if isinstance(value, Mapping) and value.get("stringValue") is not None
    }
    return ReceivedMessage(
        message_id=str(_field(record, "messageId")),
        receipt=str(_field(record, "receiptHandle")),
        body=str(_field(record, "body")),
        group_id=str(system.get("MessageGroupId", "")),
        receive_count=int(system.get("ApproximateReceiveCount", 1)),
        sent_at=sent_ms / 1000,
        first_received_at=int(system.get("ApproximateFirstReceiveTimestamp", sent_ms)) / 1000,
        attributes=attributes,
    )


def records_by_queue(event: Mapping[str, Any]) -> dict[str, list[ReceivedMessage]]:
    """The event's messages by eventSourceARN, each queue's in the order delivered.

    Raises:
        ConfigurationError: the event is not an SQS event.
    """
    records = event.get("Records")
    if not isinstance(records, list):
        raise ConfigurationError("the event has no Records list: not an SQS event")
    queues: dict[str, list[ReceivedMessage]] = {}
    for record in records:
        arn = str(_field(record, "eventSourceARN"))
        queues.setdefault(arn, []).append(received_message(record))
    return queues


def failures(message_ids: list[str]) -> BatchResponse:
    """The partial batch response that reports these messages as failed."""
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in message_ids]}
