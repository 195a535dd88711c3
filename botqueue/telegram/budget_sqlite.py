"""The flood budget in an SQLite file: shared by the workers of one host, nothing to run.

By default the file sits beside the embedded queue's (``botqueue.db`` -> ``botqueue.flood.db``),
so that grants never wait behind queue writes. Each request is one short ``BEGIN IMMEDIATE``
transaction on a thread of its own. Times are ``time.time()``, the one clock every process
of the host shares; an entry dated in the future (the clock was set back) is dropped.
The state is ephemeral, so the file is not synced (a crash of the host forgets a second).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from .budget import Beat, BudgetUnavailable, StoreAnswer
from .sqlite_file import SqliteFile

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS budget (
    key TEXT PRIMARY KEY, next_grant REAL NOT NULL, paused_until REAL NOT NULL);
CREATE TABLE IF NOT EXISTS busy (
    slot TEXT PRIMARY KEY, key TEXT NOT NULL, owner TEXT NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS done (key TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS done_by_key ON done (key, at);
CREATE TABLE IF NOT EXISTS workers (
    key TEXT NOT NULL, owner TEXT NOT NULL, expires REAL NOT NULL, PRIMARY KEY (key, owner));
"""


class SqliteStore:
    """A BudgetStore in an SQLite file, keyed by a hash of the bot token."""

    def __init__(self, path: str, token: str) -> None:
        self.path = path
        self.name = f"sqlite:///{path}"
        self.key = hashlib.sha256(token.encode()).hexdigest()[:32]
        self._file = SqliteFile(
            path, _SCHEMA, synchronous="OFF", timeout=5.0, thread="botqueue-flood"
        )

    async def _run(self, work: Callable[[sqlite3.Connection, float], T]) -> T:
        try:
            return await self._file.run(work)
        except sqlite3.Error as error:
            raise BudgetUnavailable(f"{type(error).__name__}: {error}") from error

    def _state(self, conn: sqlite3.Connection, now: float) -> tuple[float, float]:
        row = conn.execute(
            "SELECT next_grant, paused_until FROM budget WHERE key = ?", (self.key,)
        ).fetchone()
        if row is None:
            conn.execute("INSERT INTO budget VALUES (?, 0, 0)", (self.key,))
            return 0.0, 0.0
        return float(row[0]), float(row[1])

    async def grant(self, slot: str, limit: int, period: float, lease: float) -> StoreAnswer:
        """Take a slot if one is free, the grid allows it and the token is not paused."""

        def work(conn: sqlite3.Connection, now: float) -> StoreAnswer:
            next_grant, paused_until = self._state(conn, now)
            if paused_until > now:
                return StoreAnswer(False, paused_until - now, paused_until - now)
            key = self.key
            conn.execute(
                "DELETE FROM busy WHERE key = ? AND (expires <= ? OR expires > ?)",
                (key, now, now + 2 * lease),
            )
            conn.execute(
                "DELETE FROM done WHERE key = ? AND (at <= ? OR at > ?)",
                (key, now - period, now + 1.0),
            )
            busy = conn.execute("SELECT count(*) FROM busy WHERE key = ?", (key,)).fetchone()[0]
            done, first = conn.execute(
                "SELECT count(*), min(at) FROM done WHERE key = ?", (key,)
            ).fetchone()
            spacing = period / limit
            if busy + done >= limit:
                wait = spacing if first is None else first + period - now
                return StoreAnswer(False, wait, 0.0)
            if next_grant > now + period:  # the clock was set back
                next_grant = now
            if now < next_grant:
                return StoreAnswer(False, next_grant - now, 0.0)
            # On the grid, as in SlidingWindow; restarted from now after an idle spell.
            start = now if now - next_grant >= spacing else next_grant
            conn.execute("UPDATE budget SET next_grant = ? WHERE key = ?", (start + spacing, key))
            conn.execute(
                "INSERT OR REPLACE INTO busy VALUES (?, ?, ?, ?)",
                (slot, key, slot.split(":")[0], now + lease),
            )
            return StoreAnswer(True, 0.0, 0.0)

        return await self._run(work)

    async def release(self, slot: str, ago: float, period: float) -> None:
        """Free the slot and start its cool-down ``ago`` seconds back."""

        def work(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM busy WHERE slot = ?", (slot,))
            conn.execute("INSERT INTO done VALUES (?, ?)", (self.key, now - max(0.0, ago)))

        await self._run(work)

    async def pause(self, seconds: float) -> float:
        """Extend the token's pause; return the seconds left of it."""

        def work(conn: sqlite3.Connection, now: float) -> float:
            paused_until = max(self._state(conn, now)[1], now + seconds)
            conn.execute(
                "UPDATE budget SET paused_until = ? WHERE key = ?", (paused_until, self.key)
            )
            return paused_until - now

        return await self._run(work)

    async def heartbeat(
        self, owner: str, slots: list[str], lease: float, adopt: list[float]
    ) -> Beat:
        """Renew this owner's leases, record adopted cool-downs, count the live workers."""

        def work(conn: sqlite3.Connection, now: float) -> Beat:
            key = self.key
            conn.execute(
                "INSERT OR REPLACE INTO workers VALUES (?, ?, ?)", (key, owner, now + lease)
            )
            conn.execute("DELETE FROM workers WHERE key = ? AND expires <= ?", (key, now))
            # Only the slots still held: one whose release was lost must run out.
            conn.executemany(
                "UPDATE busy SET expires = ? WHERE slot = ?", [(now + lease, s) for s in slots]
            )
            conn.executemany("INSERT INTO done VALUES (?, ?)", [(key, now - ago) for ago in adopt])
            workers = conn.execute("SELECT count(*) FROM workers WHERE key = ?", (key,))
            paused = max(0.0, self._state(conn, now)[1] - now)
            return Beat(paused, int(workers.fetchone()[0]))

        return await self._run(work)

    async def leave(self, owner: str, slots: list[str]) -> None:
        """Drop this owner's lease and slots."""

        def work(conn: sqlite3.Connection, now: float) -> None:
            conn.execute("DELETE FROM workers WHERE key = ? AND owner = ?", (self.key, owner))
            conn.execute("DELETE FROM busy WHERE owner = ?", (owner,))

        await self._run(work)

    async def aclose(self) -> None:
        """Close the connection and its thread."""
        await self._file.aclose()
