"""One named SQS-FIFO-compatible queue inside an SQLite database.

Ordering works as on SQS FIFO: a group whose head is in flight is blocked; other groups flow.
The ``groups`` table keeps each group's head and the time its in-flight messages expire, so a
receive reads a handful of rows however deep the queue is.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .base import MAX_MESSAGE_BYTES, OutgoingMessage, ReceivedMessage, SendResult, invalid_text

DEDUP_WINDOW_SECONDS = 300.0
"""SQS FIFO's deduplication interval."""

# Receives claim at most 10 messages and only from unblocked groups, so a group's in-flight
# messages are always among its first 10; refreshing a group looks no further.
_HEAD_WINDOW = 10
_HOUSEKEEPING_INTERVAL = 60.0


@dataclass(frozen=True, slots=True)
class Claim:
    """What one receive transaction found: messages, overdue ones, and when to look again."""

    messages: list[ReceivedMessage]
    overdue: list[ReceivedMessage]
    wake_at: float | None


def _message_size(message: OutgoingMessage) -> int:
    size = len(message.body.encode())
    for key, value in message.attributes.items():
        size += len(key.encode()) + len(value.encode())
    return size


class SqliteQueue:
    """Synchronous operations on one queue; each runs inside a transaction it is given."""

    def __init__(
        self,
        name: str,
        *,
        retention_seconds: float,
        max_receive_count: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.retention_seconds = retention_seconds
        self.max_receive_count = max_receive_count
        self.clock = clock
        self._next_housekeeping = 0.0

    # -- writes ---------------------------------------------------------------------------

    def send(
        self,
        conn: sqlite3.Connection,
        messages: Sequence[OutgoingMessage],
        max_bytes: int | None = MAX_MESSAGE_BYTES,
    ) -> list[SendResult]:
        """Insert messages, honouring the deduplication window; one result per entry.

        ``max_bytes`` None lifts the size limit: a dead letter is its message (at most the
        limit) plus a failure record, and must not be refused for the record's size.
        """
        now = self.clock()
        self.housekeep(conn, now)
        results: list[SendResult] = []
        for message in messages:
            if (error := invalid_text(message)) is not None:
                results.append(SendResult(error=error))
                continue
            if max_bytes is not None and _message_size(message) > max_bytes:
                results.append(SendResult(error=f"message is over {max_bytes} bytes"))
                continue
            row = conn.execute(
                "SELECT message_id FROM dedup WHERE queue = ? AND dedup_id = ? AND expires_at > ?",
                (self.name, message.deduplication_id, now),
            ).fetchone()
            if row is not None:
                results.append(SendResult(message_id=row[0]))
                continue
            message_id = str(uuid.uuid4())
            attributes = json.dumps(dict(message.attributes)) if message.attributes else None
            cursor = conn.execute(
                "INSERT INTO messages (queue, message_id, group_id, dedup_id, body, attributes,"
                " sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.name,
                    message_id,
                    message.group_id,
                    message.deduplication_id,
                    message.body,
                    attributes,
                    now,
                ),
            )
            conn.execute(
                "INSERT OR REPLACE INTO dedup VALUES (?, ?, ?, ?)",
                (self.name, message.deduplication_id, message_id, now + DEDUP_WINDOW_SECONDS),
            )
            conn.execute(
                "INSERT INTO groups (queue, group_id, head_seq) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (self.name, message.group_id, cursor.lastrowid),
            )
            results.append(SendResult(message_id=message_id))
        return results

    def claim(self, conn: sqlite3.Connection, max_messages: int, visibility: float) -> Claim:
        """Take up to ``max_messages`` from unblocked groups, oldest group heads first."""
        now = self.clock()
        self.housekeep(conn, now)
        groups = [
            row[0]
            for row in conn.execute(
                "SELECT group_id FROM groups WHERE queue = ? AND blocked_until <= ?"
                " ORDER BY head_seq LIMIT ?",
                (self.name, now, max_messages),
            )
        ]
        if not groups:
            row = conn.execute(
                "SELECT MIN(blocked_until) FROM groups WHERE queue = ?", (self.name,)
            ).fetchone()
            return Claim([], [], row[0])
        picked = self._pick(conn, groups, max_messages)
        until = now + visibility
        claimed: list[ReceivedMessage] = []
        for row in picked:
            receipt = uuid.uuid4().hex
            conn.execute(
                "UPDATE messages SET visible_at = ?, receive_count = receive_count + 1,"
                " receipt = ?, first_received_at = COALESCE(first_received_at, ?) WHERE seq = ?",
                (until, receipt, now, row[0]),
            )
            claimed.append(
                ReceivedMessage(
                    message_id=row[1],
                    receipt=receipt,
                    body=row[3],
                    group_id=row[2],
                    receive_count=row[5] + 1,
                    sent_at=row[6],
                    first_received_at=row[7] if row[7] is not None else now,
                    attributes=json.loads(row[4]) if row[4] else {},
                )
            )
        conn.executemany(
            "UPDATE groups SET blocked_until = ? WHERE queue = ? AND group_id = ?",
            [(until, self.name, group) for group in {m.group_id for m in claimed}],
        )
        limit = self.max_receive_count
        overdue = [m for m in claimed if limit is not None and m.receive_count > limit]
        return Claim([m for m in claimed if m not in overdue], overdue, None)

    def _pick(
        self, conn: sqlite3.Connection, groups: list[str], max_messages: int
    ) -> list[tuple[int, str, str, str, str | None, int, float, float | None]]:
        # One message from each group first, so a batch spreads over as many groups as it can;
        # then fill up with the following messages of the same groups, in order. The fill takes
        # at most max_messages - len(groups) rows from any group, so no group is read further.
        limit = max_messages - len(groups) + 1
        per_group = [
            conn.execute(
                "SELECT seq, message_id, group_id, body, attributes, receive_count, sent_at,"
                " first_received_at FROM messages WHERE queue = ? AND group_id = ?"
                " ORDER BY seq LIMIT ?",
                (self.name, group, limit),
            ).fetchall()
            for group in groups
        ]
        picked = [rows[0] for rows in per_group if rows]
        for rows in per_group:
            picked.extend(rows[1 : 1 + max_messages - len(picked)])
        return picked[:max_messages]

    def delete(self, conn: sqlite3.Connection, receipts: Sequence[str]) -> list[str]:
        """Delete messages by receipt; return the receipts that matched nothing."""
        failed: list[str] = []
        touched: set[str] = set()
        for receipt in receipts:
            row = conn.execute(
                "DELETE FROM messages WHERE receipt = ? AND queue = ? RETURNING group_id",
                (receipt, self.name),
            ).fetchone()
            if row is None:
                failed.append(receipt)
            else:
                touched.add(row[0])
        self._refresh_groups(conn, touched)
        return failed

    def delete_ids(self, conn: sqlite3.Connection, message_ids: Sequence[str]) -> int:
        """Delete messages by id (DLQ administration); return how many were deleted."""
        touched: set[str] = set()
        deleted = 0
        for message_id in message_ids:
            row = conn.execute(
                "DELETE FROM messages WHERE message_id = ? AND queue = ? RETURNING group_id",
                (message_id, self.name),
            ).fetchone()
            if row is not None:
                touched.add(row[0])
                deleted += 1
        self._refresh_groups(conn, touched)
        return deleted

    def change_visibility(
        self, conn: sqlite3.Connection, changes: Sequence[tuple[str, float]]
    ) -> list[str]:
        """Set each in-flight message's visibility to ``seconds`` from now."""
        now = self.clock()
        failed: list[str] = []
        touched: set[str] = set()
        for receipt, seconds in changes:
            row = conn.execute(
                "UPDATE messages SET visible_at = ? WHERE receipt = ? AND queue = ?"
                " RETURNING group_id",
                (now + max(0.0, seconds), receipt, self.name),
            ).fetchone()
            if row is None:
                failed.append(receipt)
            else:
                touched.add(row[0])
        self._refresh_groups(conn, touched)
        return failed

    def purge(self, conn: sqlite3.Connection) -> int:
        """Delete every message of this queue."""
        count = conn.execute("DELETE FROM messages WHERE queue = ?", (self.name,)).rowcount
        conn.execute("DELETE FROM groups WHERE queue = ?", (self.name,))
        return count

    def housekeep(self, conn: sqlite3.Connection, now: float) -> None:
        """Drop messages past retention and expired deduplication ids, at most once a minute."""
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + _HOUSEKEEPING_INTERVAL
        expired = conn.execute(
            "DELETE FROM messages WHERE queue = ? AND sent_at < ? RETURNING group_id",
            (self.name, now - self.retention_seconds),
        ).fetchall()
        self._refresh_groups(conn, {row[0] for row in expired})
        conn.execute("DELETE FROM dedup WHERE queue = ? AND expires_at <= ?", (self.name, now))

    def _refresh_groups(self, conn: sqlite3.Connection, groups: set[str]) -> None:
        for group in groups:
            head = conn.execute(
                "SELECT MIN(seq), MAX(visible_at) FROM (SELECT seq, visible_at FROM messages"
                " WHERE queue = ? AND group_id = ? ORDER BY seq LIMIT ?)",
                (self.name, group, _HEAD_WINDOW),
            ).fetchone()
            if head[0] is None:
                conn.execute(
                    "DELETE FROM groups WHERE queue = ? AND group_id = ?", (self.name, group)
                )
            else:
                conn.execute(
                    "UPDATE groups SET head_seq = ?, blocked_until = ? WHERE queue = ?"
                    " AND group_id = ?",
                    (head[0], head[1], self.name, group),
                )

    # -- reads ----------------------------------------------------------------------------

    def counts(self, conn: sqlite3.Connection) -> tuple[int, int, float]:
        """(visible, in flight, age in seconds of the oldest message)."""
        now = self.clock()
        row = conn.execute(
            "SELECT COALESCE(SUM(visible_at <= ?), 0), COALESCE(SUM(visible_at > ?), 0),"
            " MIN(sent_at) FROM messages WHERE queue = ?",
            (now, now, self.name),
        ).fetchone()
        oldest = max(0.0, now - row[2]) if row[2] is not None else 0.0
        return int(row[0]), int(row[1]), oldest

    def peek(
        self, conn: sqlite3.Connection, limit: int | None
    ) -> list[tuple[str, str, str, float, str | None]]:
        """(message_id, body, group_id, sent_at, attributes) in queue order, untouched."""
        return conn.execute(
            "SELECT message_id, body, group_id, sent_at, attributes FROM messages"
            " WHERE queue = ? ORDER BY seq LIMIT ?",
            (self.name, -1 if limit is None else limit),
        ).fetchall()
