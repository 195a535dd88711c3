"""One SQLite database file: its connection, its worker thread, its schema and wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..errors import TransportError

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL UNIQUE,
    group_id TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    body TEXT NOT NULL,
    attributes TEXT,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL DEFAULT 0,
    receive_count INTEGER NOT NULL DEFAULT 0,
    first_received_at REAL,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_group ON messages (queue, group_id, seq);
CREATE INDEX IF NOT EXISTS messages_by_queue ON messages (queue, seq);
CREATE UNIQUE INDEX IF NOT EXISTS messages_by_receipt ON messages (receipt)
    WHERE receipt IS NOT NULL;
CREATE TABLE IF NOT EXISTS groups (
    queue TEXT NOT NULL,
    group_id TEXT NOT NULL,
    head_seq INTEGER NOT NULL,
    blocked_until REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, group_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS groups_by_head ON groups (queue, head_seq);
CREATE TABLE IF NOT EXISTS dedup (
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (queue, dedup_id)
) WITHOUT ROWID;
"""

SYNCHRONOUS_MODES = ("auto", "full", "normal", "off")
"""``auto`` (the default) fsyncs every commit that adds messages (a send, a dead letter), so
what a producer was told is enqueued survives a power cut, and commits only state changes
(claims, deletes, visibility) without waiting for the disk: losing one of those to a power
cut redelivers a message, which at-least-once delivery already allows. WAL mode keeps the file
consistent either way."""

# Waiters of every open database in this process, by file, so a send on one connection wakes a
# long poll on another at once. Other processes are noticed through PRAGMA data_version.
_waiters: dict[Path, weakref.WeakSet[Notifier]] = {}
_waiters_lock = threading.Lock()


class Notifier:
    """Wakes one event loop's long polls when a message may have become available."""

    def __init__(self, path: Path) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        with _waiters_lock:
            _waiters.setdefault(path, weakref.WeakSet()).add(self)

    def _fire(self) -> None:
        self._event.set()

    def wake(self) -> None:
        """Wake this notifier's waiters; safe from any thread."""
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fire)

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a wake-up; return whether one came."""
        try:
            await asyncio.wait_for(self._event.wait(), seconds)
        except TimeoutError:
            return False
        self._event.clear()
        return True


def wake_all(path: Path) -> None:
    """Tell every long poll on this file, in this process, to look again."""
    with _waiters_lock:
        notifiers = list(_waiters.get(path, ()))
    for notifier in notifiers:
        notifier.wake()


class SqliteDatabase:
    """A database file reached through one connection on one dedicated thread.

    One thread per file keeps every transaction a single hop from the event loop (a
    statement-per-hop wrapper such as aiosqlite costs several hops per transaction).
    """

    def __init__(self, path: str | Path, *, synchronous: str = "auto") -> None:
        self.path = Path(path).expanduser().resolve()
        mode = synchronous.lower()
        if mode not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}")
        self._levels = {
            True: "FULL" if mode in ("auto", "full") else mode.upper(),
            False: "NORMAL" if mode == "auto" else mode.upper(),
        }
        self._level = ""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="botqueue-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self.notifier: Notifier | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            create_private(self.path)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            # Each statement is IF NOT EXISTS, so processes opening the file together are safe.
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    async def open(self) -> None:
        """Create the file and schema if needed; bind wake-ups to the running loop."""
        if self.notifier is None:
            self.notifier = Notifier(self.path)
        await self.run(lambda conn: None)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work(connection)`` on the database thread.

        Raises:
            TransportError: SQLite failed (a read-only or full disk, a locked file); the
                transaction was rolled back, so nothing of it was written.
        """
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, lambda: work(self._connect()))
        except sqlite3.Error as error:
            # Callers (the producer, the consumer's loops) handle TransportError; a raw
            # sqlite3 error would escape the producer's typed errors.
            code = getattr(error, "sqlite_errorname", type(error).__name__)
            raise TransportError(f"SQLite {self.path.name}: {code}: {error}") from error

    def _sync(self, conn: sqlite3.Connection, durable: bool) -> sqlite3.Connection:
        level = self._levels[durable]
        if level != self._level:
            conn.execute(f"PRAGMA synchronous = {level}")
            self._level = level
        return conn

    async def write(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = False) -> T:
        """Run ``work`` in one IMMEDIATE transaction, so processes sharing the file serialise.

        ``durable``: the commit adds messages and must reach the disk before returning.
        """
        return await self.run(lambda conn: _transaction(self._sync(conn, durable), work))

    async def write_versioned(self, work: Callable[[sqlite3.Connection], T]) -> tuple[int, T]:
        """Like write, also returning the data_version read just before it, in the same hop."""
        return await self.run(
            lambda conn: (_data_version(conn), _transaction(self._sync(conn, False), work))
        )

    async def data_version(self) -> int:
        """SQLite's counter of commits made by other connections to this file."""
        return await self.run(_data_version)

    async def aclose(self) -> None:
        """Close the connection and stop the thread; closing again does nothing."""
        if self._closed:
            return
        self._closed = True

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)


def create_private(path: Path) -> None:
    """Create a database file readable by its owner only (0600), unless it exists.

    The queue holds user ids and undelivered invite links: no other local user may read it.
    SQLite gives its -wal and -shm files the database file's permissions.
    """
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def _transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        conn.execute("COMMIT")
    except BaseException:
        # SQLite rolls back by itself after some errors (SQLITE_FULL, I/O errors); a ROLLBACK
        # then would fail and hide the real error. A COMMIT that failed (read-only, full)
        # leaves the transaction open: without the ROLLBACK every later BEGIN would fail.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


def _data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
