"""The window state in Redis (or Valkey): shared by workers on any number of hosts.

One key per token, ``botqueue:flood:{<hash>}:window``, holds the state as JSON (not the
``:state`` hash of earlier versions, so that a worker of each can meet one Redis unharmed).
A request reads it with the server's ``TIME`` in one round trip, applies the rule here, and
writes it back with one Lua script whose only part is the atomic swap: set the new state if
the key still holds what was read, else read again (another worker went first). Every time
is the server's, so the hosts' clocks never meet. The client fails fast: one attempt, a short
timeout; the budget falls back on its own.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlparse

from .clock import Clock
from .rule import State
from .store import BudgetUnavailable, T, Work

TIMEOUT_SECONDS = 1.0
"""Connect and reply timeout: a grant slower than this is no use, the fallback is."""
TTL_MS = 86_400_000
"""The state of a token nobody used for a day is dropped (it is ephemeral)."""
_TRIES = 50  # compare-and-set attempts before giving up (workers of one token collide rarely)

# KEYS state; ARGV read, new, ttl -> 1 when swapped
_SWAP = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


def redacted(url: str) -> str:
    """The URL without its user and password, for logs."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


class RedisStore:
    """A Store in Redis, keyed by a hash of the bot token."""

    shared = True

    def __init__(
        self, url: str, token: str, *, lease: float = 10.0, clock: Clock | None = None
    ) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.name = redacted(url)
        self.lease = lease
        self.clock = clock
        tag = hashlib.sha256(token.encode()).hexdigest()[:32]
        self.key = f"botqueue:flood:{{{tag}}}:window"
        self.redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            # A retried swap is harmless, but a slow one is no use: the budget falls back.
            retry=Retry(NoBackoff(), 0),
        )
        self._swap = self.redis.register_script(_SWAP)

    async def _read(self) -> tuple[float, str]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.get(self.key)
            (seconds, micros), blob = await pipe.execute()
        now = self.clock.now() if self.clock is not None else seconds + micros / 1e6
        return now, blob.decode() if blob else ""

    async def transact(self, work: Work[T]) -> T:
        """Read, apply ``work`` and swap the state in; again if another worker went first."""
        for _ in range(_TRIES):
            now, blob = await self._call(self._read())
            state = State.loads(blob)
            result = work(state, now)
            new = state.dumps()
            if new == blob:  # nothing to write: the answer holds as of the read
                return result
            if await self._call(self._swap(keys=[self.key], args=[blob, new, TTL_MS])):
                return result
        raise BudgetUnavailable(f"state of {self.name} kept changing under {_TRIES} attempts")

    async def _call(self, request: Any) -> Any:
        from redis import exceptions

        try:
            return await request
        except (exceptions.ConnectionError, exceptions.TimeoutError, OSError) as error:
            # The pool's idle connections died with this one (a restarted server): without
            # this, the first requests after the server is back would fail on them.
            await self.redis.connection_pool.disconnect(inuse_connections=False)
            raise BudgetUnavailable(f"{type(error).__name__}: {error}") from error
        except exceptions.RedisError as error:
            raise BudgetUnavailable(f"{type(error).__name__}: {error}") from error

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()
