"""The invite-link ledger in Redis (or Valkey): shared by workers on any number of hosts.

Per bot (a hash of its token, never the token) and per (chat, user), one hash maps each
link's URL to ``"created expires"`` (Unix seconds of the recording host). Beside it, one small
key per link (named by a hash of its URL) names its owner's hash, so ``forget(url)`` needs
no chat or user. Every key carries a TTL a little past the latest expiry of its links, so
nothing outlives the links it records; ``held`` drops the expired ones. All keys of one bot
share a hash tag (one cluster slot).

Entitlements (the access ledger) live in one hash per chat, the user id mapping to the entry as
JSON. They have no TTL: an entitlement lasts until a removal. A change reads and writes the
entry in two requests; the operations of one (chat, user) run one at a time (the queue's
message group), so nothing else changes it between them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from .flood.store_redis import redacted
from .links import Access, AccessRule, LedgerUnavailable, granted, revoked

T = TypeVar("T")

TIMEOUT_SECONDS = 2.0
"""Connect and reply timeout: a ledger slower than this fails the operation, which is retried."""
SKEW_SECONDS = 300
"""How long a key outlives its latest link: the hosts' clocks and Telegram's may differ."""

# KEYS user, owner; ARGV url, "created expires", ttl -> 1
_RECORD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ttl = tonumber(ARGV[3])
if redis.call('TTL', KEYS[1]) < ttl then redis.call('EXPIRE', KEYS[1], ttl) end
redis.call('SET', KEYS[2], KEYS[1], 'EX', ttl)
return 1
"""


class RedisLedger:
    """The ledger in Redis, keyed by a hash of the bot token; each call is one or two requests."""

    def __init__(self, url: str, token: str) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.name = redacted(url)
        self.bot = hashlib.sha256(token.encode()).hexdigest()[:32]
        self.prefix = f"botqueue:links:{{{self.bot}}}"
        self.redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            # Every request is idempotent, so one retry on a fresh connection is safe: it
            # rides over a pooled connection that died with a restarted server.
            retry=Retry(NoBackoff(), 1),
        )
        self._record = self.redis.register_script(_RECORD)

    def _user_key(self, chat: str, user_id: int) -> str:
        return f"{self.prefix}:user:{chat}:{user_id}"

    def _owner_key(self, url: str) -> str:
        # A hash: invite URLs admit whoever has them, so they stay out of key names.
        return f"{self.prefix}:url:{hashlib.sha256(url.encode()).hexdigest()[:32]}"

    async def _call(self, request: Callable[[], Awaitable[T]]) -> T:
        from redis import exceptions

        try:
            return await request()
        except (exceptions.ConnectionError, exceptions.TimeoutError, OSError) as error:
            # The pool's idle connections died with this one (a restarted server).
            await self.redis.connection_pool.disconnect(inuse_connections=False)
            raise self._unavailable(error) from error
        except exceptions.RedisError as error:
            raise self._unavailable(error) from error

    def _unavailable(self, error: BaseException) -> LedgerUnavailable:
        # The redacted URL only: the configured one may carry a password.
        return LedgerUnavailable(f"invite-link ledger {self.name}: {type(error).__name__}: {error}")

    async def record(self, chat: str, user_id: int, url: str, expires_at: float) -> None:
        """Remember a link just created (``expires_at`` in Unix seconds)."""
        now = time.time()
        ttl = max(1, math.ceil(expires_at - now)) + SKEW_SECONDS
        keys = [self._user_key(chat, user_id), self._owner_key(url)]
        args: list[str | int] = [url, f"{now:.6f} {expires_at:.6f}", ttl]
        await self._call(lambda: self._record(keys=keys, args=args))

    async def held(self, chat: str, user_id: int) -> list[str]:
        """The user's unexpired links in the chat, oldest first; expired ones are dropped."""
        key = self._user_key(chat, user_id)
        raw: dict[Any, Any] = await self._call(lambda: self.redis.hgetall(key))
        now = time.time()
        live: list[tuple[float, str]] = []
        expired: list[str] = []
        for field, value in raw.items():
            url = field.decode()
            created, expires = (float(part) for part in value.decode().split())
            if expires <= now:
                expired.append(url)
            else:
                live.append((created, url))
        if expired:
            await self._drop(key, expired)
        return [url for _, url in sorted(live)]

    async def _drop(self, key: str, urls: list[str]) -> None:
        async def request() -> None:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hdel(key, *urls)
                pipe.delete(*(self._owner_key(url) for url in urls))
                await pipe.execute()

        await self._call(request)

    async def forget(self, url: str) -> None:
        """Drop a revoked link (unknown ones are ignored)."""
        owner = await self._call(lambda: self.redis.get(self._owner_key(url)))
        if owner is not None:
            # Bytes: the client does not decode replies.
            await self._drop(owner.decode() if isinstance(owner, bytes) else owner, [url])

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()

    # -- access ---------------------------------------------------------------------------

    def _access_key(self, chat: str) -> str:
        return f"{self.prefix}:access:{chat}"

    async def owner(self, url: str) -> tuple[str, int] | None:
        """The (chat, user) a held link was created for."""
        owner = await self._call(lambda: self.redis.get(self._owner_key(url)))
        if owner is None:
            return None
        key = owner.decode() if isinstance(owner, bytes) else str(owner)
        chat, user = key.removeprefix(f"{self.prefix}:user:").rsplit(":", 1)
        return chat, int(user)

    async def _entries(self, chat: str) -> dict[int, Access]:
        key = self._access_key(chat)
        raw: dict[Any, Any] = await self._call(lambda: self.redis.hgetall(key))
        entries = {}
        for field, value in raw.items():
            user = int(field)
            data = json.loads(value)
            entries[user] = Access(chat, user, data["e"], data["s"], data["g"], data["r"])
        return entries

    async def _change(self, chat: str, user_id: int, subscription: str, rule: AccessRule) -> None:
        key = self._access_key(chat)
        value = await self._call(lambda: self.redis.hget(key, str(user_id)))
        previous = None
        if value is not None:
            data = json.loads(value)
            previous = Access(chat, user_id, data["e"], data["s"], data["g"], data["r"])
        entry = rule(previous, chat, user_id, subscription, time.time())
        encoded = json.dumps(
            {
                "e": entry.entitled,
                "s": entry.subscription_id,
                "g": entry.since,
                "r": entry.revoked_at,
            }
        )
        await self._call(lambda: self.redis.hset(key, str(user_id), encoded))

    async def grant(self, chat: str, user_id: int, subscription_id: str) -> None:
        """Record an invite performed."""
        await self._change(chat, user_id, subscription_id, granted)

    async def revoke(self, chat: str, user_id: int, subscription_id: str) -> None:
        """Record a removal performed."""
        await self._change(chat, user_id, subscription_id, revoked)

    async def access(self, chat: str, user_id: int) -> Access | None:
        """The user's entry with their links."""
        entry = (await self._entries(chat)).get(user_id)
        if entry is None:
            return None
        return replace(entry, links=tuple(await self.held(chat, user_id)))

    async def accesses(self, chat: str) -> list[Access]:
        """Every entry of the chat, by user id."""
        entries = await self._entries(chat)
        return [
            replace(entries[user], links=tuple(await self.held(chat, user)))
            for user in sorted(entries)
        ]
