"""The AWS SQS FIFO transport on aiobotocore: batched sends, receives, deletes and visibility
changes, each batch handled entry by entry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError, TransportError
from . import sqs_dlq
from .base import (
    MAX_MESSAGE_BYTES,
    DeadLetter,
    OutgoingMessage,
    QueueStats,
    ReceivedMessage,
    SendResult,
    invalid_text,
)
from .sqs_batch import (
    BATCH_SIZE,
    SYSTEM_ATTRIBUTES,
    message_size,
    run_batch,
    send_entry,
    size_batches,
    to_received,
    whole_seconds,
)
from .sqs_client import (
    LONG_POLL_SECONDS,
    MAX_VISIBILITY_SECONDS,
    SqsClientConfig,
    check_queue_url,
    create_client,
    error_code,
    new_attempt_id,
    register_hooks,
    resolve_client_config,
    translated,
)


class SqsTransport:
    """A FIFO queue and its dead-letter queue on SQS; one client, opened on first use."""

    def __init__(
        self,
        url: str,
        dlq_url: str | None = None,
        *,
        visibility_timeout: float = 30.0,
        client_config: SqsClientConfig | None = None,
    ) -> None:
        self.url = check_queue_url(url, "BOT_OPERATIONS_QUEUE_URL")
        self._dlq_url = (
            None if dlq_url is None else check_queue_url(dlq_url, "BOT_OPERATIONS_DLQ_URL")
        )
        self.visibility_timeout = visibility_timeout
        self.client_config = client_config or resolve_client_config(url)
        self._context: Any = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> SqsTransport:
        await self.client()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def client(self) -> Any:
        """The open aiobotocore SQS client (created on first use)."""
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                context = create_client(self.client_config)
                with translated("client set-up"):
                    client = await context.__aenter__()
                register_hooks(client)
                self._context, self._client = context, client
        return self._client

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        async with self._lock:
            context, self._context, self._client = self._context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)

    # -- the main queue -------------------------------------------------------------------

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send messages to the main queue; one result per entry, in order."""
        return await self.send_to(self.url, messages)

    async def send_to(self, url: str, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send messages with SendMessageBatch, 10 (and at most 1 MiB) per request.

        A message over the size limit fails alone, without a request. If a later request
        fails as a whole, its entries and the rest carry the error (the earlier ones were sent).
        """
        client = await self.client()
        results = [_refusal(m) for m in messages]
        sizes = [
            0 if result else message_size(m) for m, result in zip(messages, results, strict=True)
        ]
        sendable = [i for i, result in enumerate(results) if result is None]
        for number, batch in enumerate(size_batches([sizes[i] for i in sendable])):
            indexes = [sendable[j] for j in batch]
            try:
                with translated("SendMessageBatch"):
                    outcomes = await run_batch(
                        lambda entries: client.send_message_batch(QueueUrl=url, Entries=entries),
                        [send_entry(messages[i]) for i in indexes],
                        group_of=lambda entry: str(entry["MessageGroupId"]),
                    )
            except TransportError as error:
                if number == 0:
                    raise
                for i in sendable[sendable.index(indexes[0]) :]:
                    results[i] = SendResult(error=str(error))
                break
            for i, outcome in zip(indexes, outcomes, strict=True):
                results[i] = (
                    SendResult(message_id=str(outcome.success["MessageId"]))
                    if outcome.success is not None
                    else SendResult(error=outcome.error)
                )
        return [result or SendResult(error="not sent") for result in results]

    async def receive(
        self,
        max_messages: int = 10,
        *,
        wait_seconds: float = float(LONG_POLL_SECONDS),
        visibility_timeout: float | None = None,
    ) -> list[ReceivedMessage]:
        """Long-poll the main queue for up to ``max_messages`` (1-10)."""
        visibility = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        return await self.receive_from(self.url, max_messages, wait_seconds, visibility)

    async def receive_from(
        self, url: str, max_messages: int, wait_seconds: float, visibility_timeout: float
    ) -> list[ReceivedMessage]:
        """One ReceiveMessage (seconds rounded up to whole ones), with a ReceiveRequestAttemptId
        so that a retry after a network error gets the same messages back."""
        if not 1 <= max_messages <= BATCH_SIZE:
            raise ValueError("max_messages must be between 1 and 10")
        client = await self.client()
        request = {
            "QueueUrl": url,
            "MaxNumberOfMessages": max_messages,
            "WaitTimeSeconds": whole_seconds(wait_seconds, LONG_POLL_SECONDS),
            "VisibilityTimeout": whole_seconds(visibility_timeout, MAX_VISIBILITY_SECONDS),
            "MessageSystemAttributeNames": SYSTEM_ATTRIBUTES,
            "MessageAttributeNames": ["All"],
            "ReceiveRequestAttemptId": new_attempt_id(),
        }
        with translated("ReceiveMessage"):
            try:
                response = await client.receive_message(**request)
            except Exception as error:
                # SQS refuses an attempt id it considers spent ("not retryable"); one more
                # try with a new id, as after a throttle.
                if error_code(error) != "InvalidParameterValue" or "AttemptId" not in str(error):
                    raise
                request["ReceiveRequestAttemptId"] = new_attempt_id()
                response = await client.receive_message(**request)
        return [to_received(raw) for raw in response.get("Messages", [])]

    async def delete_batch(self, receipts: Sequence[str]) -> list[str]:
        """Delete delivered messages; return the receipts SQS did not accept."""
        return await self.delete_from(self.url, receipts)

    async def delete_from(self, url: str, receipts: Sequence[str]) -> list[str]:
        """DeleteMessageBatch in tens; transient entry failures are retried."""
        client = await self.client()
        failed: list[str] = []
        for start in range(0, len(receipts), BATCH_SIZE):
            chunk = list(receipts[start : start + BATCH_SIZE])
            with translated("DeleteMessageBatch"):
                outcomes = await run_batch(
                    lambda entries: client.delete_message_batch(QueueUrl=url, Entries=entries),
                    [{"ReceiptHandle": receipt} for receipt in chunk],
                )
            failed += [r for r, outcome in zip(chunk, outcomes, strict=True) if outcome.error]
        return failed

    async def change_visibility_batch(self, changes: Sequence[tuple[str, float]]) -> list[str]:
        """Set each (receipt, seconds from now) visibility; return receipts that failed."""
        return await self.change_visibility_on(self.url, changes)

    async def change_visibility_on(
        self, url: str, changes: Sequence[tuple[str, float]]
    ) -> list[str]:
        """ChangeMessageVisibilityBatch in tens, seconds rounded up to whole ones."""
        client = await self.client()
        failed: list[str] = []
        for start in range(0, len(changes), BATCH_SIZE):
            chunk = list(changes[start : start + BATCH_SIZE])
            entries = [
                {
                    "ReceiptHandle": receipt,
                    "VisibilityTimeout": whole_seconds(seconds, MAX_VISIBILITY_SECONDS),
                }
                for receipt, seconds in chunk
            ]
            with translated("ChangeMessageVisibilityBatch"):
                outcomes = await run_batch(
                    lambda request: client.change_message_visibility_batch(
                        QueueUrl=url, Entries=request
                    ),
                    entries,
                )
            failed += [r for (r, _), outcome in zip(chunk, outcomes, strict=True) if outcome.error]
        return failed

    async def dead_letter(self, message: ReceivedMessage, failure: Mapping[str, Any]) -> None:
        """Write the message with its failure record to the DLQ, then delete it from the queue.

        The DLQ copy's deduplication id is derived from the original message id, so dead-
        lettering the same delivery twice (a crash before the delete) writes it once.
        """
        entry = sqs_dlq.dead_letter_entry(message, failure)
        (result,) = await self.send_to(await self.dlq_url(), [entry])
        if result.message_id is None:
            raise TransportError(f"could not write the dead letter: {result.error}")
        await self.delete_batch([message.receipt])

    # -- queue attributes -----------------------------------------------------------------

    async def attributes(self, url: str, names: Sequence[str] = ("All",)) -> dict[str, str]:
        """GetQueueAttributes for a queue."""
        client = await self.client()
        with translated("GetQueueAttributes"):
            response = await client.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))
        return dict(response.get("Attributes", {}))

    async def dlq_url(self) -> str:
        """BOT_OPERATIONS_DLQ_URL, or the queue of the main queue's redrive policy."""
        if self._dlq_url is None:
            policy = (await self.attributes(self.url, ["RedrivePolicy"])).get("RedrivePolicy")
            if not policy:
                raise ConfigurationError(
                    "BOT_OPERATIONS_DLQ_URL is not set and the queue has no redrive policy "
                    "to take the DLQ from"
                )
            arn = str(json.loads(policy)["deadLetterTargetArn"])
            account, name = arn.split(":")[4:6]
            client = await self.client()
            with translated("GetQueueUrl"):
                found = await client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            self._dlq_url = str(found["QueueUrl"])
        return self._dlq_url

    async def stats(self) -> QueueStats:
        """Approximate counts from GetQueueAttributes for the queue and its DLQ.

        SQS has no attribute for the oldest message's age (CloudWatch's
        ApproximateAgeOfOldestMessage is the source), so ``oldest_age_seconds`` is 0.
        """
        counts = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        dlq_url = await self.dlq_url()
        main, dead = await asyncio.gather(
            self.attributes(self.url, counts), self.attributes(dlq_url, counts)
        )
        visible = int(main.get(counts[0], 0)) + int(main.get(counts[2], 0))
        dead_letters = sum(int(dead.get(name, 0)) for name in counts)
        return QueueStats(visible, int(main.get(counts[1], 0)), dead_letters, 0.0)

    # -- the dead-letter queue ------------------------------------------------------------

    async def dlq_list(self, limit: int | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first, read by receiving and releasing them (see sqs_dlq)."""
        return await sqs_dlq.list_dead_letters(self, limit)

    async def dlq_redrive(self, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters back in order, each with a fresh deduplication id."""
        return await sqs_dlq.redrive(self, message_ids)

    async def dlq_purge(self) -> int:
        """Delete every dead letter; return how many were deleted."""
        return await sqs_dlq.purge(self)


def _refusal(message: OutgoingMessage) -> SendResult | None:
    """An entry SQS would refuse, answered without a request: invalid text or too large."""
    error = invalid_text(message)
    if error is None and (size := message_size(message)) > MAX_MESSAGE_BYTES:
        error = f"MessageTooLong: {size} bytes, SQS takes at most {MAX_MESSAGE_BYTES}"
    return None if error is None else SendResult(error=error)
