"""The window state in an SQLite file: shared by the workers of one host, nothing to run.

By default the file sits beside the embedded queue's (``botqueue.db`` -> ``botqueue.flood.db``),
so that grants never wait behind queue writes. Each request is one short ``BEGIN IMMEDIATE``
transaction on a thread of its own that reads the token's state, applies the rule and writes
it back. Times are ``time.time()``, the one clock every process of the host shares. The state
is ephemeral, so the file is not synced (a crash of the host forgets a second).
"""

from __future__ import annotations

import hashlib
import sqlite3

from ..sqlite_file import SqliteFile
from .clock import WALL, Clock
from .rule import State
from .store import BudgetUnavailable, T, Work

_SCHEMA = "CREATE TABLE IF NOT EXISTS flood_state (key TEXT PRIMARY KEY, state TEXT NOT NULL);"


class SqliteStore:
    """A Store in an SQLite file, keyed by a hash of the bot token."""

    shared = True

    def __init__(self, path: str, token: str, *, lease: float = 10.0, clock: Clock = WALL) -> None:
        self.path = path
        self.name = f"sqlite:///{path}"
        self.lease = lease
        self.clock = clock
        self.key = hashlib.sha256(token.encode()).hexdigest()[:32]
        self._file = SqliteFile(
            path, _SCHEMA, synchronous="OFF", timeout=5.0, thread="botqueue-flood"
        )

    async def transact(self, work: Work[T]) -> T:
        """Read, apply ``work`` and write back in one transaction."""

        def transaction(conn: sqlite3.Connection, _: float) -> T:
            row = conn.execute("SELECT state FROM flood_state WHERE key = ?", (self.key,))
            found = row.fetchone()
            blob = found[0] if found else None
            state = State.loads(blob)
            result = work(state, self.clock.now())
            new = state.dumps()
            if new != blob:
                conn.execute("INSERT OR REPLACE INTO flood_state VALUES (?, ?)", (self.key, new))
            return result

        try:
            return await self._file.run(transaction)
        except sqlite3.Error as error:
            raise BudgetUnavailable(f"{type(error).__name__}: {error}") from error

    async def aclose(self) -> None:
        """Close the connection and its thread."""
        await self._file.aclose()
