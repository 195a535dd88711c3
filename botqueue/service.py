"""The service interface the consumer calls, what it returns, and its declared optional lifecycle.

A service must perform the three operations (:class:`BotService`). Beyond them it may
declare, by having the members of the small protocols below, that it wants starting and
closing, that it reports bot-wide conditions, or that it can be observed. The engine reads
them once, through :meth:`Lifecycle.of`, and calls only what is declared (arq's declared
``on_startup``/``on_shutdown`` is the model), instead of probing attributes here and there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from .operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions

OutcomeStatus = Literal["succeeded", "noop"]
UnavailableReason = Literal["flood", "telegram_unavailable"]
"""Why the bot is paused: Telegram's flood control, or Telegram not answering."""
RequestObserver = Callable[[str, str, float], None]
"""Called after every Bot API call with (method, status, seconds); status is "ok" or the
error's reason code (a small fixed set, safe as a metric label)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a finished operation did: ``succeeded``, or ``noop`` when nothing was needed."""

    status: OutcomeStatus = "succeeded"
    detail: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class BotService(Protocol):
    """Performs operations; raises RetryableError or PermanentError when it cannot.

    Returning ``None`` is a plain success (``Outcome()``).
    """

    async def invite_user(self, op: InviteUser) -> Outcome | None:
        """Let the user into the channel."""
        ...

    async def remove_user(self, op: RemoveUser) -> Outcome | None:
        """Take the user out of the channel."""
        ...

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome | None:
        """Check the bot's rights in the channel."""
        ...


async def dispatch(service: BotService, op: AnyOperation) -> Outcome | None:
    """Call the service method that performs ``op``."""
    if isinstance(op, InviteUser):
        return await service.invite_user(op)
    if isinstance(op, RemoveUser):
        return await service.remove_user(op)
    return await service.verify_permissions(op)


# -- bot-wide conditions ----------------------------------------------------------------------
# Telegram limits and fails a token as a whole. A flood pause or an outage is a state of the
# bot, not a failure of the operation that met it: the consumer stops receiving while it
# lasts, held messages wait, and the operation runs again afterwards without counting an
# attempt (so the queue's redrive policy never counts it either).


@dataclass(frozen=True, slots=True)
class Unavailable:
    """The bot is paused: why, and for how many more seconds when that is known."""

    reason: UnavailableReason
    remaining: float | None = None

    def describe(self) -> str:
        """One line for /readyz and the logs."""
        if self.reason == "flood":
            return f"paused for flood control ({self.remaining or 0:.0f} s left)"
        return "Telegram unavailable (server or network errors; probing)"


@runtime_checkable
class BotState(Protocol):
    """What the consumer asks a service about the bot as a whole."""

    def unavailable(self) -> Unavailable | None:
        """None when the bot can work now; otherwise why not."""
        ...

    async def wait_available(self) -> None:
        """Return once the bot can work again."""
        ...

    async def absorbs(self, error: BaseException, key: object) -> bool:
        """Whether ``error`` (met by the operation ``key``, its message id) came from a
        bot-wide condition, so that the operation is to be run again once the bot is
        available, without counting an attempt. May wait a little to find out."""
        ...


@runtime_checkable
class PauseClock(Protocol):
    """A bot state that also counts the seconds spent paused (for the metrics)."""

    def paused_seconds(self) -> dict[str, float]:
        """Seconds spent paused, by reason."""
        ...


class FloodCounters(Protocol):
    """Counters of flood control a service may expose (read at each metrics scrape)."""

    rate_limited: int
    paused_seconds: float
    handed_back: int

    @property
    def budget_shared(self) -> bool | None:
        """True while the budget is shared, False on a fallback share, None when local."""
        ...


# -- the optional lifecycle -------------------------------------------------------------------


@runtime_checkable
class Startable(Protocol):
    """A service to start before the first operation (e.g. check its token)."""

    async def start(self) -> None:
        """Start; a RetryableError is retried, a FatalError refuses for good."""
        ...


@runtime_checkable
class Closable(Protocol):
    """A service holding connections to close at the end."""

    async def aclose(self) -> None:
        """Close what the service holds."""
        ...


@runtime_checkable
class ReportsBotState(Protocol):
    """A service that reports bot-wide conditions (flood pauses, outages)."""

    @property
    def bot_state(self) -> BotState:
        """The bot's condition, which the consumer asks before it works."""
        ...


@runtime_checkable
class Observable(Protocol):
    """A service whose API calls and flood control can be observed."""

    def add_request_observer(self, observer: RequestObserver) -> None:
        """Call ``observer`` after every API call."""
        ...

    @property
    def flood_stats(self) -> FloodCounters | None:
        """Flood-control counters, when the service keeps them."""
        ...


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Lifecycle:
    """A service's optional lifecycle, read once from the protocols it declares."""

    start: Callable[[], Awaitable[None]] | None = None
    aclose: Callable[[], Awaitable[None]] = _nothing
    bot_state: BotState | None = None
    paused_seconds: Callable[[], Mapping[str, float]] | None = None
    add_request_observer: Callable[[RequestObserver], None] | None = None
    flood_stats: FloodCounters | None = None

    @classmethod
    def of(cls, service: object) -> Lifecycle:
        """What ``service`` declares; a plain BotService declares nothing."""
        state = service.bot_state if isinstance(service, ReportsBotState) else None
        observable = service if isinstance(service, Observable) else None
        return cls(
            start=service.start if isinstance(service, Startable) else None,
            aclose=service.aclose if isinstance(service, Closable) else _nothing,
            bot_state=state if isinstance(state, BotState) else None,
            paused_seconds=state.paused_seconds if isinstance(state, PauseClock) else None,
            add_request_observer=observable.add_request_observer if observable else None,
            flood_stats=observable.flood_stats if observable else None,
        )
