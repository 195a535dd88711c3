"""A small SQLite file of the host's workers (flood budget, invite-link ledger): one
connection on a thread of its own, each call one short ``BEGIN IMMEDIATE`` transaction."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from ..transports.sqlite_db import create_private

T = TypeVar("T")


class SqliteFile:
    """``await file.run(work)`` runs ``work(conn, time.time())`` in one transaction.

    The file is created 0600 (it holds a token's hash and, for the ledger, invite links).
    ``sqlite3.Error`` is re-raised as is; each owner maps it to its own retryable error.
    """

    def __init__(
        self, path: str, schema: str, *, synchronous: str, timeout: float, thread: str
    ) -> None:
        self.path = path
        self._schema = schema
        self._synchronous = synchronous
        self._timeout = timeout
        self._thread = thread
        self._conn: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            create_private(Path(self.path))
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            conn.executescript(self._schema)
            self._conn = conn
        return self._conn

    async def run(self, work: Callable[[sqlite3.Connection, float], T]) -> T:
        """Run ``work`` in one transaction on the file's thread; roll back if it raises."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=self._thread)

        def transaction() -> T:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn, time.time())
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may have rolled back already (a full disk): a second ROLLBACK would
                # raise and hide the error that matters.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return await asyncio.get_running_loop().run_in_executor(self._executor, transaction)

    async def aclose(self) -> None:
        """Close the connection and stop its thread."""
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(executor, close)
        executor.shutdown(wait=True)
