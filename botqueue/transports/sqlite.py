"""The embedded transport: an SQS-FIFO-compatible queue and its DLQ in SQLite files."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from ..errors import ConfigurationError, TransportError
from ..failure import FailureRecord
from .base import (
    FAILURE_ATTRIBUTE,
    DeadLetter,
    OutgoingMessage,
    QueueStats,
    ReceivedMessage,
    SendResult,
)
from .sqlite_db import SYNCHRONOUS_MODES, SqliteDatabase, wake_all
from .sqlite_queue import Claim, SqliteQueue

DEFAULT_QUEUE = "bot-operations"
DEFAULT_DLQ = "bot-operations-dlq"
MAIN_RETENTION_SECONDS = 4 * 24 * 3600.0
DLQ_RETENTION_SECONDS = 14 * 24 * 3600.0
DEFAULT_MAX_RECEIVE_COUNT = 25
"""Above the largest attempt count an operation may carry (maxRetries <= 20, plus one)."""
MAX_WAIT_SECONDS = 20.0
# How often an idle long poll asks SQLite whether another process committed something.
# In-process sends wake it at once; this bounds the delay for sends from other processes.
CROSS_PROCESS_POLL_SECONDS = 0.05


def parse_sqlite_url(url: str, default_queue: str) -> tuple[Path, str, str]:
    """Split ``sqlite:///path.db?queue=name&synchronous=auto`` into (path, queue, synchronous).

    Three slashes and a relative path, or four slashes and an absolute one, as SQLAlchemy reads
    them.
    """
    parsed = urlparse(url)
    if parsed.scheme != "sqlite" or parsed.netloc or not parsed.path.strip("/"):
        raise ConfigurationError(f"not an sqlite:///path URL: {url!r}")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    unknown = set(query) - {"queue", "synchronous"}
    if unknown:
        raise ConfigurationError(f"unknown option(s) {sorted(unknown)} in queue URL {url!r}")
    synchronous = query.get("synchronous", "auto").lower()
    if synchronous not in SYNCHRONOUS_MODES:
        raise ConfigurationError(f"synchronous must be auto, full, normal or off in {url!r}")
    return Path(parsed.path[1:]), query.get("queue", default_queue), synchronous


class SqliteTransport:
    """A main queue and its dead-letter queue, in one SQLite file or two."""

    def __init__(
        self,
        url: str,
        dlq_url: str | None = None,
        *,
        max_receive_count: int | None = DEFAULT_MAX_RECEIVE_COUNT,
        visibility_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        path, name, sync = parse_sqlite_url(url, DEFAULT_QUEUE)
        self.db = SqliteDatabase(path, synchronous=sync)
        if dlq_url is None:
            self.dlq_db, dlq_name = self.db, f"{name}-dlq"
        else:
            dlq_path, dlq_name, dlq_sync = parse_sqlite_url(dlq_url, DEFAULT_DLQ)
            same = dlq_path.expanduser().resolve() == self.db.path
            self.dlq_db = self.db if same else SqliteDatabase(dlq_path, synchronous=dlq_sync)
        if self.dlq_db is self.db and dlq_name == name:
            raise ConfigurationError("the DLQ must not be the main queue itself")
        self.queue = SqliteQueue(
            name,
            retention_seconds=MAIN_RETENTION_SECONDS,
            max_receive_count=max_receive_count,
            clock=clock,
        )
        self.dlq = SqliteQueue(dlq_name, retention_seconds=DLQ_RETENTION_SECONDS, clock=clock)
        self.visibility_timeout = visibility_timeout
        self.clock = clock
        self._opened = False

    async def __aenter__(self) -> SqliteTransport:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Create the files and tables if needed."""
        if not self._opened:
            await self.db.open()
            if self.dlq_db is not self.db:
                await self.dlq_db.open()
            self._opened = True

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send messages to the main queue; one result per entry."""
        await self.open()
        results = await self.db.write(lambda conn: self.queue.send(conn, messages), durable=True)
        self._wake(self.db)
        return results

    async def receive(
        self,
        max_messages: int = 10,
        *,
        wait_seconds: float = MAX_WAIT_SECONDS,
        visibility_timeout: float | None = None,
    ) -> list[ReceivedMessage]:
        """Long-poll for up to ``max_messages`` (1-10); returns as soon as any are available."""
        await self.open()
        if not 1 <= max_messages <= 10:
            raise ValueError("max_messages must be between 1 and 10")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(max(wait_seconds, 0.0), MAX_WAIT_SECONDS)
        visibility = self.visibility_timeout if visibility_timeout is None else visibility_timeout
        assert self.db.notifier is not None
        while True:
            # One hop: data_version is read just before the claim's transaction.
            version, claim = await self._claim(max_messages, visibility)
            if claim.messages:
                return claim.messages
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                pause = min(remaining, CROSS_PROCESS_POLL_SECONDS)
                if claim.wake_at is not None:
                    pause = min(pause, max(0.0, claim.wake_at - self.clock()))
                if await self.db.notifier.wait(pause) or pause < CROSS_PROCESS_POLL_SECONDS:
                    break
                if await self.db.data_version() != version:
                    break

    async def _claim(self, max_messages: int, visibility: float) -> tuple[int, Claim]:
        # Shielded: if the receive is cancelled mid-claim, the claimed messages are handed
        # back at once rather than left invisible for a whole visibility timeout.
        task = asyncio.ensure_future(
            self.db.write_versioned(lambda conn: self.queue.claim(conn, max_messages, visibility))
        )
        try:
            version, claim = await asyncio.shield(task)
        except asyncio.CancelledError:
            _, claim = await task
            receipts = [(m.receipt, 0.0) for m in claim.messages]
            if receipts:
                await self.change_visibility_batch(receipts)
            raise
        for message in claim.overdue:
            await self.dead_letter(message, _overdue_record(message, self.queue))
        return version, claim

    async def delete_batch(self, receipts: Sequence[str]) -> list[str]:
        """Delete delivered messages; return receipts that matched nothing."""
        if not receipts:
            return []
        failed = await self.db.write(lambda conn: self.queue.delete(conn, receipts))
        self._wake(self.db)
        return failed

    async def change_visibility_batch(self, changes: Sequence[tuple[str, float]]) -> list[str]:
        """Set each (receipt, seconds) visibility; return receipts that matched nothing."""
        if not changes:
            return []
        failed = await self.db.write(lambda conn: self.queue.change_visibility(conn, changes))
        self._wake(self.db)
        return failed

    async def dead_letter(self, message: ReceivedMessage, failure: Mapping[str, Any]) -> None:
        """Copy the message and its failure record to the DLQ, then delete it from the queue."""
        await self.open()
        entry = OutgoingMessage(
            body=message.body,
            group_id=message.group_id,
            # The original id is unique, so a retried dead-lettering is not written twice.
            deduplication_id=f"dlq-{message.message_id}",
            attributes={FAILURE_ATTRIBUTE: json.dumps(dict(failure), default=str)},
        )
        # Written before the delete: a crash in between leaves a duplicate, never a loss.
        (result,) = await self.dlq_db.write(
            lambda conn: self.dlq.send(conn, [entry], max_bytes=None), durable=True
        )
        if result.message_id is None:
            # Never delete what the DLQ did not take: the message would be lost.
            raise TransportError(f"could not write the dead letter: {result.error}")
        await self.delete_batch([message.receipt])

    async def stats(self) -> QueueStats:
        """Counts for the main queue and the DLQ."""
        await self.open()
        visible, in_flight, oldest = await self.db.run(self.queue.counts)
        dead, dead_in_flight, _ = await self.dlq_db.run(self.dlq.counts)
        return QueueStats(visible, in_flight, dead + dead_in_flight, oldest)

    async def dlq_list(self, limit: int | None = None) -> list[DeadLetter]:
        """Dead letters, oldest first, with their failure records; nothing is consumed."""
        await self.open()
        rows = await self.dlq_db.run(lambda conn: self.dlq.peek(conn, limit))
        return [
            DeadLetter(
                message_id=message_id,
                body=body,
                group_id=group_id,
                sent_at=sent_at,
                failure=_failure_of(attributes),
            )
            for message_id, body, group_id, sent_at, attributes in rows
        ]

    async def dlq_redrive(self, message_ids: Sequence[str] | None = None) -> int:
        """Move dead letters back in order, each with a fresh deduplication id."""
        letters = await self.dlq_list()
        if message_ids is not None:
            wanted = set(message_ids)
            letters = [letter for letter in letters if letter.message_id in wanted]
        moved = 0
        for start in range(0, len(letters), 10):
            batch = letters[start : start + 10]
            entries = [
                OutgoingMessage(letter.body, letter.group_id, f"redrive-{uuid.uuid4().hex}")
                for letter in batch
            ]
            await self.send_batch(entries)
            # Deleted only after the send committed: a crash leaves a copy, never a loss.
            ids = [letter.message_id for letter in batch]
            moved += await self.dlq_db.write(partial(self.dlq.delete_ids, message_ids=ids))
        return moved

    async def dlq_purge(self) -> int:
        """Delete every dead letter."""
        await self.open()
        return await self.dlq_db.write(self.dlq.purge)

    async def aclose(self) -> None:
        """Close both databases."""
        await self.db.aclose()
        if self.dlq_db is not self.db:
            await self.dlq_db.aclose()

    @staticmethod
    def _wake(db: SqliteDatabase) -> None:
        wake_all(db.path)


def _failure_of(attributes: str | None) -> dict[str, Any] | None:
    if not attributes:
        return None
    raw = json.loads(attributes).get(FAILURE_ATTRIBUTE)
    record: dict[str, Any] | None = json.loads(raw) if raw else None
    return record


def _overdue_record(message: ReceivedMessage, queue: SqliteQueue) -> dict[str, Any]:
    return FailureRecord(
        error=f"received more than maxReceiveCount={queue.max_receive_count} times",
        kind="max_receive_count",
        attempts=message.receive_count - 1,
        first_attempt_at=message.first_received_at,
        last_attempt_at=queue.clock(),
        original_message_id=message.message_id,
    ).to_dict()
