"""A bot token's flood budget: one grant rule (``rule``) over stores that offer one primitive.

Telegram limits a token as a whole, so every worker of a token must draw on one budget:

- in this process (``MemoryStore``): right for a single worker, and every per-chat window;
- in an SQLite file beside the embedded queue (``SqliteStore``): every worker of that host;
- in Redis (``RedisStore``): workers on any number of hosts.

The grant rule, its round-trip credit, the pause, leases and clock steps are decided by the
pure functions of ``rule`` (the safety argument is its docstring); a store only applies them
atomically (``Store.transact``). ``Budget`` (``budget``) draws slots from any store and falls
back on a local share when a shared one is unreachable. ``open_budget`` picks the store from
TELEGRAM_RATE_LIMIT_URL and the queue URL (see docs/telegram.md, "Scaling out"). The clock of
each is injectable (``clock``), so the rule is tested in virtual time.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlparse

from .budget import Budget, Grant
from .clock import MONOTONIC, WALL, Clock, FakeClock
from .round_trips import RoundTrips
from .rule import Answer, Beat, Rate, State
from .store import BudgetUnavailable, MemoryStore, Store

__all__ = [
    "LOCAL",
    "MONOTONIC",
    "REDIS_SCHEMES",
    "WALL",
    "Answer",
    "Beat",
    "Budget",
    "BudgetUnavailable",
    "Clock",
    "FakeClock",
    "FloodBudget",
    "Grant",
    "MemoryStore",
    "Rate",
    "RoundTrips",
    "State",
    "Store",
    "open_budget",
    "sidecar_path",
]

REDIS_SCHEMES = ("redis", "rediss", "unix")
"""TELEGRAM_RATE_LIMIT_URL schemes that name a Redis (or Valkey) server."""
LOCAL = "local"
"""TELEGRAM_RATE_LIMIT_URL value that keeps the budget in each process."""


class FloodBudget(Protocol):
    """A bot token's overall rate window and flood pause, in this process or shared."""

    clock: Clock
    """The clock of ``release``'s and ``paused_until``'s times."""

    @property
    def shared(self) -> bool | None:
        """True while shared with other workers, False on the local fallback, None if local."""

    async def acquire(self) -> Grant | None:
        """Wait for a slot and take it; None when the bot is paused (see paused_until())."""

    async def release(
        self,
        grant: Grant,
        sent_at: float | None,
        completed_at: float,
        *,
        answered: bool = True,
        server_hold: float = 0.0,
    ) -> None:
        """The call sent at ``sent_at`` completed at ``completed_at`` (``clock``),
        ``answered`` if without an exception: the slot's cool-down starts (``server_hold``
        seconds before the completion if the call took that long; see ``rule``)."""

    def pause(self, seconds: float) -> None:
        """Pause every call of the token for ``seconds`` from now (after a 429)."""

    def paused_until(self) -> float:
        """``clock`` time at which the token's pause ends (in the past: not paused)."""

    async def aclose(self) -> None:
        """Give back what this process holds and close connections."""


def sidecar_path(queue_url: str) -> str | None:
    """The flood budget file beside an embedded queue's file (None: not an embedded file).

    Raises:
        ConfigurationError: the queue URL is a malformed sqlite URL.
    """
    if urlparse(queue_url).scheme != "sqlite":
        return None
    from ...transports.sqlite import parse_sqlite_url

    path = parse_sqlite_url(queue_url, "q")[0]
    if str(path) == ":memory:":
        return None
    return str(path.with_name(f"{path.stem}.flood{path.suffix}"))


def open_budget(
    rate: float,
    *,
    token: str,
    url: str | None = None,
    queue_url: str | None = None,
    lease: float = 10.0,
    fallback_share: float | None = None,
) -> Budget:
    """The overall budget of ``token`` at ``rate``/s named by ``url`` (TELEGRAM_RATE_LIMIT_URL).

    ``url`` None: shared through an SQLite file beside the queue's when the queue is embedded
    (``queue_url`` None is the default ``sqlite:///botqueue.db``), else this process's.
    ``sqlite:///path`` names the file, ``redis://…`` a server, ``local`` keeps it per process.
    Nothing is opened until the first acquire.

    Raises:
        ConfigurationError: ``url`` or the queue URL is malformed.
    """
    from ...errors import ConfigurationError
    from ...transports import DEFAULT_URL
    from ...transports.sqlite import parse_sqlite_url
    from .store_redis import RedisStore
    from .store_sqlite import SqliteStore

    store: Store | None = None
    if url is None:
        path = sidecar_path(queue_url or DEFAULT_URL)
        store = None if path is None else SqliteStore(path, token, lease=lease)
    elif url == LOCAL:
        store = None
    elif urlparse(url).scheme in REDIS_SCHEMES:
        store = RedisStore(url, token, lease=lease)
    elif urlparse(url).scheme == "sqlite":
        store = SqliteStore(str(parse_sqlite_url(url, "q")[0]), token, lease=lease)
    else:
        raise ConfigurationError(
            "TELEGRAM_RATE_LIMIT_URL must be redis://…, rediss://…, unix://…, sqlite:///path "
            f"or local, not {url!r}"
        )
    return Budget(store, rate, fallback_share=fallback_share)
