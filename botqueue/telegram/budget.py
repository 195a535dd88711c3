"""A bot token's flood budget: its overall rate window and its 429 pause, behind one interface.

Telegram limits a token as a whole, so every worker of a token must draw on one budget:

- ``LocalBudget``: in this process only (a ``SlidingWindow``); right for a single worker;
- ``SharedBudget`` over a ``BudgetStore``: in an SQLite file beside the embedded queue
  (``budget_sqlite``) or in Redis across hosts (``budget_redis``), with the same accounting as
  the window: a slot is busy from its grant until its call completes and cools down for one
  period from the completion; grants are spaced ``period / limit`` apart.

``open_budget`` picks one from TELEGRAM_RATE_LIMIT_URL and the queue URL (see docs/telegram.md,
"Scaling out"). Per-chat windows are not part of a budget: they stay per process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol
from urllib.parse import urlparse

from .window import SlidingWindow, Slot

REDIS_SCHEMES = ("redis", "rediss", "unix")
"""TELEGRAM_RATE_LIMIT_URL schemes that name a Redis (or Valkey) server."""
LOCAL = "local"
"""TELEGRAM_RATE_LIMIT_URL value that keeps the budget in each process."""


@dataclass(eq=False)
class Grant:
    """One slot of the budget, held from acquire() until release()."""

    slot: str
    granted_at: float
    """time.monotonic() when the slot was granted."""
    shared: bool = False
    """Granted by the shared store (else by ``window``, a local one)."""
    window: SlidingWindow | None = field(default=None, repr=False)
    window_slot: Slot | None = field(default=None, repr=False)

    def release_locally(self, sent_at: float, answered: bool) -> None:
        """Give a local window's slot back, with the window's own accounting."""
        if self.window is not None and self.window_slot is not None:
            self.window_slot.sent_at = sent_at
            self.window.release(self.window_slot, answered=answered)
            self.window = None


class FloodBudget(Protocol):
    """A bot token's overall rate window and flood pause, in this process or shared."""

    @property
    def shared(self) -> bool | None:
        """True while shared with other workers, False on the local fallback, None if local."""

    async def acquire(self) -> Grant | None:
        """Wait for a slot and take it; None when the bot is paused (see paused_until())."""

    async def release(
        self, grant: Grant, sent_at: float, completed_at: float, *, answered: bool = True
    ) -> None:
        """The call sent at ``sent_at`` completed at ``completed_at`` (time.monotonic()),
        ``answered`` if without an exception: the slot's cool-down starts."""

    def pause(self, seconds: float) -> None:
        """Pause every call of the token for ``seconds`` from now (after a 429)."""

    def paused_until(self) -> float:
        """time.monotonic() at which the token's pause ends (in the past: not paused)."""

    async def aclose(self) -> None:
        """Give back what this process holds and close connections."""


class LocalBudget:
    """The budget of one process: a SlidingWindow and a pause deadline."""

    shared: bool | None = None

    def __init__(self, rate: float) -> None:
        self.window = SlidingWindow(rate)
        self._paused_until = 0.0

    async def acquire(self) -> Grant | None:
        """Wait for a slot of the window; None (slot given back) if a pause began meanwhile."""
        slot = await self.window.acquire()
        if self._paused_until > time.monotonic():
            self.window.release(slot, answered=False)
            return None
        return Grant("local", time.monotonic(), window=self.window, window_slot=slot)

    async def release(
        self, grant: Grant, sent_at: float, completed_at: float, *, answered: bool = True
    ) -> None:
        """Start the slot's cool-down, credited as the window credits its calls."""
        grant.release_locally(sent_at, answered)

    def pause(self, seconds: float) -> None:
        """Move the pause deadline to ``seconds`` from now, unless it is later already."""
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def paused_until(self) -> float:
        """The pause deadline (time.monotonic())."""
        return self._paused_until

    async def aclose(self) -> None:
        """Nothing to close."""


class StoreAnswer(NamedTuple):
    """A store's answer to a grant request."""

    granted: bool
    wait: float
    """Seconds until asking again may succeed (when not granted)."""
    paused: float
    """Seconds left of the token's pause (> 0: not granted because of it)."""


class Beat(NamedTuple):
    """A store's answer to a heartbeat."""

    paused: float
    """Seconds left of the token's pause."""
    workers: int
    """Workers holding a lease on the budget, this one included."""


class BudgetUnavailable(Exception):
    """The shared store could not be reached or refused the request."""


class BudgetStore(Protocol):
    """One token's shared window in a store several processes reach; times are the store's."""

    name: str
    """Where the store is, for logs (never a password)."""

    async def grant(self, slot: str, limit: int, period: float, lease: float) -> StoreAnswer:
        """Take a slot for ``lease`` seconds if one is free, the grid allows and no pause."""

    async def release(self, slot: str, ago: float, period: float) -> None:
        """Free ``slot`` (if still held) and cool a slot down from ``ago`` seconds back."""

    async def pause(self, seconds: float) -> float:
        """Extend the pause to ``seconds`` from now; return the seconds left of it."""

    async def heartbeat(
        self, owner: str, slots: list[str], lease: float, adopt: list[float]
    ) -> Beat:
        """Renew the owner's and its slots' leases; record cool-downs that began ``adopt``
        seconds back (calls made while the store was unreachable)."""

    async def leave(self, owner: str, slots: list[str]) -> None:
        """Drop the owner's lease and its slots (a clean shutdown)."""

    async def aclose(self) -> None:
        """Close connections."""


def sidecar_path(queue_url: str) -> str | None:
    """The flood budget file beside an embedded queue's file (None: not an embedded file).

    Raises:
        ConfigurationError: the queue URL is a malformed sqlite URL.
    """
    if urlparse(queue_url).scheme != "sqlite":
        return None
    from ..transports.sqlite import parse_sqlite_url

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
) -> FloodBudget:
    """The overall budget of ``token`` at ``rate``/s named by ``url`` (TELEGRAM_RATE_LIMIT_URL).

    ``url`` None: shared through an SQLite file beside the queue's when the queue is embedded
    (``queue_url`` None is the default ``sqlite:///botqueue.db``), else this process's.
    ``sqlite:///path`` names the file, ``redis://…`` a server, ``local`` keeps it per process.
    Nothing is opened until the first acquire.

    Raises:
        ConfigurationError: ``url`` or the queue URL is malformed.
    """
    from ..errors import ConfigurationError
    from ..transports import DEFAULT_URL
    from .budget_redis import RedisStore
    from .budget_shared import SharedBudget
    from .budget_sqlite import SqliteStore

    store: BudgetStore
    if url is None:
        path = sidecar_path(queue_url or DEFAULT_URL)
        if path is None:
            return LocalBudget(rate)
        store = SqliteStore(path, token)
    elif url == LOCAL:
        return LocalBudget(rate)
    elif urlparse(url).scheme in REDIS_SCHEMES:
        store = RedisStore(url, token)
    elif urlparse(url).scheme == "sqlite":
        store = SqliteStore(_sqlite_file(url), token)
    else:
        raise ConfigurationError(
            "TELEGRAM_RATE_LIMIT_URL must be redis://…, rediss://…, unix://…, sqlite:///path "
            f"or local, not {url!r}"
        )
    return SharedBudget(store, rate, lease=lease, fallback_share=fallback_share)


def _sqlite_file(url: str) -> str:
    from ..transports.sqlite import parse_sqlite_url

    return str(parse_sqlite_url(url, "q")[0])
