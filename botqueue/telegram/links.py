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

It is also the access ledger (issue 19): per (chat, user), whether the user is entitled (an
invite was performed and no removal came after it), the subscription, since when, and the
user's links. ``grant`` and ``revoke`` are called by the flows (membership.py) when an invite
or a removal is performed; the rule they follow is written once (``granted``, ``revoked``)
and each backend only stores its result. ``owner(url)`` finds the (chat, user) of a link.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, TypeVar
from urllib.parse import urlparse

from ..errors import ConfigurationError, RetryableError
from .sqlite_file import SqliteFile

if TYPE_CHECKING:
    from ..config import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class Access:
    """One (chat, user)'s entry in the access ledger."""

    chat: str
    user_id: int
    entitled: bool
    """An invite was performed and no removal came after it."""
    subscription_id: str
    """The subscription of the latest invite (or, never invited, of the removal)."""
    since: float | None
    """When the latest invite was performed (Unix seconds); None if never."""
    revoked_at: float | None = None
    """When a removal ended the entitlement; None while entitled."""
    links: tuple[str, ...] = ()
    """The user's unexpired, unrevoked links in the chat (filled in by ``access``/``accesses``)."""


def granted(
    previous: Access | None, chat: str, user_id: int, subscription: str, now: float
) -> Access:
    """The entry after an invite was performed: entitled, by this subscription, since now."""
    return Access(chat, user_id, True, subscription, now)


def revoked(
    previous: Access | None, chat: str, user_id: int, subscription: str, now: float
) -> Access:
    """The entry after a removal was performed; a repeated removal keeps the first one's time."""
    if previous is None:
        return Access(chat, user_id, False, subscription, None, now)
    if not previous.entitled:
        return previous
    return replace(previous, entitled=False, revoked_at=now, links=())


class LinkLedger(Protocol):
    """Invite links created and not yet revoked, and entitlements, by (chat, user)."""

    async def record(self, chat: str, user_id: int, url: str, expires_at: float) -> None:
        """Remember a link just created (``expires_at`` in Unix seconds)."""

    async def held(self, chat: str, user_id: int) -> list[str]:
        """The user's unexpired links in the chat, oldest first."""

    async def forget(self, url: str) -> None:
        """Drop a link that was revoked (or that the chat no longer has)."""

    async def owner(self, url: str) -> tuple[str, int] | None:
        """The (chat, user) a held link was created for; None if unknown (or revoked)."""

    async def grant(self, chat: str, user_id: int, subscription_id: str) -> None:
        """Record an invite performed (sent, or the user already in): the user is entitled."""

    async def revoke(self, chat: str, user_id: int, subscription_id: str) -> None:
        """Record a removal performed: the user is no longer entitled."""

    async def access(self, chat: str, user_id: int) -> Access | None:
        """The user's entry with their links; None if the ledger never saw them."""

    async def accesses(self, chat: str) -> list[Access]:
        """Every entry of the chat, by user id."""

    async def aclose(self) -> None:
        """Release the file and its thread, or the connections."""


class MemoryLedger:
    """The ledger of one process."""

    def __init__(self) -> None:
        self._links: dict[tuple[str, int], dict[str, float]] = {}
        self._owner: dict[str, tuple[str, int]] = {}
        self._access: dict[tuple[str, int], Access] = {}

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

    async def owner(self, url: str) -> tuple[str, int] | None:
        """The (chat, user) a held link was created for."""
        return self._owner.get(url)

    async def grant(self, chat: str, user_id: int, subscription_id: str) -> None:
        """Record an invite performed."""
        key = (chat, user_id)
        self._access[key] = granted(
            self._access.get(key), chat, user_id, subscription_id, time.time()
        )

    async def revoke(self, chat: str, user_id: int, subscription_id: str) -> None:
        """Record a removal performed."""
        key = (chat, user_id)
        self._access[key] = revoked(
            self._access.get(key), chat, user_id, subscription_id, time.time()
        )

    async def access(self, chat: str, user_id: int) -> Access | None:
        """The user's entry with their links."""
        entry = self._access.get((chat, user_id))
        return entry and replace(entry, links=tuple(await self.held(chat, user_id)))

    async def accesses(self, chat: str) -> list[Access]:
        """Every entry of the chat, by user id."""
        users = sorted(user for (c, user) in self._access if c == chat)
        return [entry for user in users if (entry := await self.access(chat, user))]

    async def aclose(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS links (
    url TEXT PRIMARY KEY, bot TEXT NOT NULL, chat TEXT NOT NULL, user_id INTEGER NOT NULL,
    created REAL NOT NULL, expires REAL NOT NULL);
CREATE INDEX IF NOT EXISTS links_by_user ON links (bot, chat, user_id);
CREATE TABLE IF NOT EXISTS access (
    bot TEXT NOT NULL, chat TEXT NOT NULL, user_id INTEGER NOT NULL, entitled INTEGER NOT NULL,
    subscription TEXT NOT NULL, since REAL, revoked_at REAL,
    PRIMARY KEY (bot, chat, user_id));
"""


AccessRule = Callable[[Access | None, str, int, str, float], Access]
"""``granted`` or ``revoked``: (previous entry, chat, user, subscription, now) -> the new entry."""


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

    async def owner(self, url: str) -> tuple[str, int] | None:
        """The (chat, user) a held link was created for."""
        rows = await self._run(
            lambda conn, now: conn.execute(
                "SELECT chat, user_id FROM links WHERE url = ? AND bot = ?", (url, self.bot)
            ).fetchall()
        )
        return (str(rows[0][0]), int(rows[0][1])) if rows else None

    def _read(self, conn: sqlite3.Connection, chat: str, user_id: int | None) -> list[Access]:
        where, args = "bot = ? AND chat = ?", list[str | int]([self.bot, chat])
        if user_id is not None:
            where, args = f"{where} AND user_id = ?", [*args, user_id]
        rows = conn.execute(
            "SELECT chat, user_id, entitled, subscription, since, revoked_at FROM access "
            f"WHERE {where} ORDER BY user_id",  # the clause is ours, the values bound
            args,
        ).fetchall()
        return [Access(str(r[0]), int(r[1]), bool(r[2]), str(r[3]), r[4], r[5]) for r in rows]

    async def _change(self, chat: str, user_id: int, subscription: str, rule: AccessRule) -> None:
        def work(conn: sqlite3.Connection, now: float) -> None:
            previous = next(iter(self._read(conn, chat, user_id)), None)
            entry = rule(previous, chat, user_id, subscription, now)
            conn.execute(
                "INSERT OR REPLACE INTO access VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    self.bot,
                    chat,
                    user_id,
                    int(entry.entitled),
                    entry.subscription_id,
                    entry.since,
                    entry.revoked_at,
                ),
            )

        await self._run(work)

    async def grant(self, chat: str, user_id: int, subscription_id: str) -> None:
        """Record an invite performed."""
        await self._change(chat, user_id, subscription_id, granted)

    async def revoke(self, chat: str, user_id: int, subscription_id: str) -> None:
        """Record a removal performed."""
        await self._change(chat, user_id, subscription_id, revoked)

    async def access(self, chat: str, user_id: int) -> Access | None:
        """The user's entry with their links."""
        found = await self._run(lambda conn, now: self._read(conn, chat, user_id))
        if not found:
            return None
        return replace(found[0], links=tuple(await self.held(chat, user_id)))

    async def accesses(self, chat: str) -> list[Access]:
        """Every entry of the chat, by user id."""
        entries = await self._run(lambda conn, now: self._read(conn, chat, None))
        return [replace(e, links=tuple(await self.held(chat, e.user_id))) for e in entries]

    async def aclose(self) -> None:
        """Close the file and stop the thread."""
        await self._file.aclose()


def ledger_url(settings: Settings) -> str | None:
    """TELEGRAM_ACCESS_LEDGER_URL, else its older name TELEGRAM_INVITE_LEDGER_URL."""
    return settings.telegram_access_ledger_url or settings.telegram_invite_ledger_url


def open_ledger(
    token: str,
    *,
    url: str | None = None,
    queue_url: str | None = None,
    rate_limit_url: str | None = None,
) -> LinkLedger:
    """The ledger named by ``url`` (``ledger_url``: TELEGRAM_ACCESS_LEDGER_URL or
    TELEGRAM_INVITE_LEDGER_URL): ``redis://…`` (``rediss://``,
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
        return _redis(url, token, "TELEGRAM_ACCESS_LEDGER_URL (or TELEGRAM_INVITE_LEDGER_URL)")
    if urlparse(url).scheme == "sqlite":
        return SqliteLedger(str(parse_sqlite_url(url, "q")[0]), token)
    raise ConfigurationError(
        "TELEGRAM_ACCESS_LEDGER_URL (or TELEGRAM_INVITE_LEDGER_URL) must be "
        f"redis://host:port/db, rediss://…, unix://…, sqlite:///path or local, not {url!r}"
    )


def _redis(url: str, token: str, setting: str) -> LinkLedger:
    from .links_redis import RedisLedger

    try:
        return RedisLedger(url, token)
    except ValueError as error:  # a bad port or database; the message quotes only that part
        raise ConfigurationError(f"{setting} is not a valid Redis URL: {error}") from None
