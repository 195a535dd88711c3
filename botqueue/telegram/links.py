"""The invite-link ledger: every invite link the bot created and has not revoked, per user.

The Bot API cannot list a chat's invite links, so a link is known only to whoever kept its
URL. The ledger keeps it from its creation until it is revoked or expires, so that:

- a removal revokes the user's links (a single-use link frees its place when its user is
  removed, so without this a removed subscriber could come back, or one who never joined
  could join after the removal);
- an invite first revokes the links an earlier attempt created: when a worker dies after
  sending a link and before deleting the message, the next delivery sends a second link,
  and only one may stay valid.

``MemoryLedger`` keeps this for one process (a worker that is killed forgets it);
``SqliteLedger`` keeps it in a file the workers of a host share and that survives them: by
default beside an embedded queue's file (``botqueue.db`` -> ``botqueue.links.db``);
``RedisLedger`` (links_redis.py) keeps it in Redis for workers on any number of hosts.
``open_ledger`` picks one from TELEGRAM_INVITE_LEDGER_URL, the queue URL and, for SQS, the
flood budget's Redis (TELEGRAM_RATE_LIMIT_URL).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from typing import Protocol, TypeVar
from urllib.parse import urlparse

from ..errors import ConfigurationError, RetryableError
from .sqlite_file import SqliteFile

T = TypeVar("T")


class LinkLedger(Protocol):
    """Invite links created and not yet revoked, by (chat, user)."""

    async def record(self, chat: str, user_id: int, url: str, expires_at: float) -> None:
        """Remember a link just created (``expires_at`` in Unix seconds)."""

    async def held(self, chat: str, user_id: int) -> list[str]:
        """The user's unexpired links in the chat, oldest first."""

    async def forget(self, url: str) -> None:
        """Drop a link that was revoked (or that the chat no longer has)."""

    async def aclose(self) -> None:
        """Release the file and its thread, or the connections."""


class MemoryLedger:
    """The ledger of one process."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, int], dict[str, float]] = {}
        self._owner: dict[str, tuple[str, int]] = {}

    async def record(self, chat: str, user_id: int, url: str, expires_at: float) -> None:
        """Remember a link just created."""
        self._links.setdefault((chat, user_id), {})[url] = expires_at
        self._owner[url] = (chat, user_id)

    async def held(self, chat: str, user_id: int) -> list[str]:
        """The user's unexpired links in the chat; expired ones are dropped on the way."""
        links = self._links.get((chat, user_id), {})
        now = time.time()
        for url in [url for url, expires in links.items() if expires <= now]:
            await self.forget(url)
        return list(self._links.get((chat, user_id), {}))

    async def forget(self, url: str) -> None:
        """Drop a revoked link."""
        key = self._owner.pop(url, None)
        if key is not None:
            links = self._links.get(key, {})
            links.pop(url, None)
            if not links:
                self._links.pop(key, None)

    async def aclose(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    url TEXT PRIMARY KEY, bot TEXT NOT NULL, chat TEXT NOT NULL, user_id INTEGER NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS links_by_user ON links (bot, chat, user_id);
"""


class LedgerUnavailable(RetryableError):
    """The ledger's file or server could not be read or written; the operation is tried again
    later."""


class SqliteLedger:
    """The ledger in an SQLite file, keyed by a hash of the bot token; each call is one short
    transaction on a thread of its own."""

    def __init__(self, path: str, token: str) -> None:
        self.path = path
        self.bot = hashlib.sha256(token.encode()).hexdigest()[:32]
        # A killed worker loses nothing with synchronous NORMAL; only a crash of the host could.
        self._file = SqliteFile(
            path, _SCHEMA, synchronous="NORMAL", timeout=10.0, thread="botqueue-links"
        )

    async def _run(self, work: Callable[[sqlite3.Connection, float], T]) -> T:
        try:
            return await self._file.run(work)
        except sqlite3.Error as error:
            raise LedgerUnavailable(
                f"invite-link ledger {self.path}: {type(error).__name__}: {error}"
            ) from error

    async def record(self, chat: str, user_id: int, url: str, expires_at: float) -> None:
        """Remember a link just created."""
        await self._run(
            lambda conn, now: conn.execute(
                "INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?, ?, ?)",
                (url, self.bot, chat, user_id, now, expires_at),
            )
        )

    async def held(self, chat: str, user_id: int) -> list[str]:
        """The user's unexpired links in the chat; expired ones are deleted on the way."""

        def work(conn: sqlite3.Connection, now: float) -> list[str]:
            conn.execute(
                "DELETE FROM links WHERE bot = ? AND chat = ? AND user_id = ? AND expires <= ?",
                (self.bot, chat, user_id, now),
            )
            rows = conn.execute(
                "SELECT url FROM links WHERE bot = ? AND chat = ? AND user_id = ? ORDER BY created",
                (self.bot, chat, user_id),
            ).fetchall()
            return [str(row[0]) for row in rows]

        return await self._run(work)

    async def forget(self, url: str) -> None:
        """Drop a revoked link."""
        await self._run(lambda conn, now: conn.execute("DELETE FROM links WHERE url = ?", (url,)))

    async def aclose(self) -> None:
        """Close the file and stop the thread."""
        await self._file.aclose()


def open_ledger(
    token: str,
    *,
    url: str | None = None,
    queue_url: str | None = None,
    rate_limit_url: str | None = None,
) -> LinkLedger:
    """The ledger named by ``url`` (TELEGRAM_INVITE_LEDGER_URL): ``redis://…`` (``rediss://``,
    ``unix://``), ``sqlite:///path`` or ``local``. None: a file beside an embedded queue's
    (``queue_url`` None is the default ``sqlite:///botqueue.db``); with any other queue, the
    flood budget's Redis when ``rate_limit_url`` (TELEGRAM_RATE_LIMIT_URL) names one (workers
    sharing a budget may be on several hosts), else this process's memory. Nothing is opened
    until the first call.

    Raises:
        ConfigurationError: ``url`` or the queue URL is malformed.
    """
    from ..transports import DEFAULT_URL
    from ..transports.sqlite import parse_sqlite_url
    from .flood import REDIS_SCHEMES

    if url == "local":
        return MemoryLedger()
    if url is None:
        queue = queue_url or DEFAULT_URL
        if urlparse(queue).scheme != "sqlite":
            if rate_limit_url and urlparse(rate_limit_url).scheme in REDIS_SCHEMES:
                return _redis(rate_limit_url, token, "TELEGRAM_RATE_LIMIT_URL")
            return MemoryLedger()
        path = parse_sqlite_url(queue, "q")[0]
        if str(path) == ":memory:":
            return MemoryLedger()
        return SqliteLedger(str(path.with_name(f"{path.stem}.links{path.suffix}")), token)
    if urlparse(url).scheme in REDIS_SCHEMES:
        return _redis(url, token, "TELEGRAM_INVITE_LEDGER_URL")
    if urlparse(url).scheme == "sqlite":
        return SqliteLedger(str(parse_sqlite_url(url, "q")[0]), token)
    raise ConfigurationError(
        "TELEGRAM_INVITE_LEDGER_URL must be redis://host:port/db, rediss://…, unix://…, "
        f"sqlite:///path or local, not {url!r}"
    )


def _redis(url: str, token: str, setting: str) -> LinkLedger:
    from .links_redis import RedisLedger

    try:
        return RedisLedger(url, token)
    except ValueError as error:  # a bad port or database; the message quotes only that part
        raise ConfigurationError(f"{setting} is not a valid Redis URL: {error}") from None
