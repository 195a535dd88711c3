"""The flood budget in Redis (or Valkey): shared by workers on any number of hosts.

Every request is one Lua script, so each grant is atomic, and every time is the server's
(``TIME``), so the hosts' clocks never meet. Per token, four small keys share one hash tag
(one cluster slot): ``busy`` and ``done`` (sorted sets of slots by lease expiry and by
cool-down start), ``workers`` (owners by lease expiry) and ``state`` (grid and pause).
The client fails fast: one attempt, a short timeout; the budget falls back on its own.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import urlparse

from .budget import Beat, BudgetUnavailable, StoreAnswer

TIMEOUT_SECONDS = 1.0
"""Connect and reply timeout: a grant slower than this is no use, the fallback is."""

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function f(x) return string.format('%.6f', x) end
"""
# KEYS busy, done, state; ARGV slot, limit, period, lease -> {granted, wait, paused}
_GRANT = (
    _NOW
    + """
local limit, period, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local spacing = period / limit
local paused = tonumber(redis.call('HGET', KEYS[3], 'paused_until') or '0')
if paused > now then return {0, f(paused - now), f(paused - now)} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) >= limit then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local wait = spacing
  if first[2] then wait = tonumber(first[2]) + period - now end
  return {0, f(wait), '0'}
end
local nxt = tonumber(redis.call('HGET', KEYS[3], 'next_grant') or '0')
if now < nxt then return {0, f(nxt - now), '0'} end
if now - nxt >= spacing then nxt = now end
redis.call('HSET', KEYS[3], 'next_grant', f(nxt + spacing))
redis.call('ZADD', KEYS[1], f(now + lease), ARGV[1])
return {1, '0', '0'}
"""
)
# KEYS busy, done; ARGV slot, ago
_RELEASE = (
    _NOW
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], f(now - tonumber(ARGV[2])), ARGV[1])
return 1
"""
)
# KEYS state; ARGV seconds -> seconds left
_PAUSE = (
    _NOW
    + """
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until') or '0')
local wanted = now + tonumber(ARGV[1])
if wanted > paused then
  paused = wanted
  redis.call('HSET', KEYS[1], 'paused_until', f(paused))
end
return f(paused - now)
"""
)
# KEYS busy, done, state, workers; ARGV owner, lease, n, n slots, then ages -> {paused, workers}
_HEARTBEAT = (
    _NOW
    + """
local expiry = f(now + tonumber(ARGV[2]))
redis.call('ZADD', KEYS[4], expiry, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now)
local n = tonumber(ARGV[3])
for i = 4, 3 + n do redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i]) end
for i = 4 + n, #ARGV do
  redis.call('ZADD', KEYS[2], f(now - tonumber(ARGV[i])), ARGV[1] .. ':adopted:' .. f(now) .. i)
end
local paused = tonumber(redis.call('HGET', KEYS[3], 'paused_until') or '0')
return {f(math.max(0, paused - now)), redis.call('ZCARD', KEYS[4])}
"""
)


def redacted(url: str) -> str:
    """The URL without its user and password, for logs."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{host}{port}{parsed.path}"


class RedisStore:
    """A BudgetStore in Redis, keyed by a hash of the bot token."""

    def __init__(self, url: str, token: str) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.name = redacted(url)
        tag = hashlib.sha256(token.encode()).hexdigest()[:32]
        prefix = f"botqueue:flood:{{{tag}}}"
        self.busy, self.done = f"{prefix}:busy", f"{prefix}:done"
        self.state, self.workers = f"{prefix}:state", f"{prefix}:workers"
        self.redis = Redis.from_url(
            url,
            socket_timeout=TIMEOUT_SECONDS,
            socket_connect_timeout=TIMEOUT_SECONDS,
            # A retried grant could be granted twice; the budget has its own fallback.
            retry=Retry(NoBackoff(), 0),
        )
        self._grant = self.redis.register_script(_GRANT)
        self._release = self.redis.register_script(_RELEASE)
        self._pause = self.redis.register_script(_PAUSE)
        self._heartbeat = self.redis.register_script(_HEARTBEAT)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        from redis import exceptions

        try:
            return await script(keys=keys, args=args)
        except (exceptions.ConnectionError, exceptions.TimeoutError, OSError) as error:
            # The pool's idle connections died with this one (a restarted server): without
            # this, the first requests after the server is back would fail on them.
            await self.redis.connection_pool.disconnect(inuse_connections=False)
            raise BudgetUnavailable(f"{type(error).__name__}: {error}") from error
        except exceptions.RedisError as error:
            raise BudgetUnavailable(f"{type(error).__name__}: {error}") from error

    async def grant(self, slot: str, limit: int, period: float, lease: float) -> StoreAnswer:
        """Take a slot if one is free, the grid allows it and the token is not paused."""
        keys = [self.busy, self.done, self.state]
        granted, wait, paused = await self._call(self._grant, keys, [slot, limit, period, lease])
        return StoreAnswer(bool(granted), float(wait), float(paused))

    async def release(self, slot: str, ago: float, period: float) -> None:
        """Free the slot and start its cool-down ``ago`` seconds back."""
        await self._call(self._release, [self.busy, self.done], [slot, max(0.0, ago)])

    async def pause(self, seconds: float) -> float:
        """Extend the token's pause; return the seconds left of it."""
        return float(await self._call(self._pause, [self.state], [seconds]))

    async def heartbeat(
        self, owner: str, slots: list[str], lease: float, adopt: list[float]
    ) -> Beat:
        """Renew this owner's leases, record adopted cool-downs, count the live workers."""
        keys = [self.busy, self.done, self.state, self.workers]
        args = [owner, lease, len(slots), *slots, *adopt]
        paused, workers = await self._call(self._heartbeat, keys, args)
        return Beat(float(paused), int(workers))

    async def leave(self, owner: str, slots: list[str]) -> None:
        """Drop this owner's lease and slots."""
        from redis.exceptions import RedisError

        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self.workers, owner)
                if slots:
                    pipe.zrem(self.busy, *slots)
                await pipe.execute()
        except (RedisError, OSError) as error:
            raise BudgetUnavailable(str(error)) from error

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()
