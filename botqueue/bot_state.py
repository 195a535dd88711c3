"""Bot-wide conditions: whether the bot can work now, which the consumer asks before it works.

Telegram limits and fails a bot token as a whole. A flood pause or an outage is a state of
the bot, not a failure of the operation that happened to meet it: while the bot is
unavailable the consumer stops receiving, the messages it holds wait (their visibility is
extended), and an operation that met the condition is run again when it ends, in place,
without a new receive. So neither its attempt count nor its receive count (which the queue's
redrive policy counts) grows because of it.

A service offers this by having a ``bot_state`` attribute that satisfies :class:`BotState`;
the Telegram service does (flood pauses and its outage circuit breaker). A service without
one gets the per-operation retries alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

UnavailableReason = Literal["flood", "telegram_unavailable"]
"""Why the bot is paused: Telegram's flood control, or Telegram not answering."""


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
        available, without counting an attempt. May wait a little to find out (whether an
        outage is starting)."""
        ...


def bot_state_of(service: object) -> BotState | None:
    """The service's ``bot_state``, when it has one."""
    state = getattr(service, "bot_state", None)
    return state if isinstance(state, BotState) else None


async def first_of(work: Awaitable[object], stop: asyncio.Event) -> bool:
    """Await ``work`` unless ``stop`` is set first; True when ``work`` finished."""
    if stop.is_set():
        if asyncio.iscoroutine(work):
            work.close()
        return False
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    if task.cancelled():
        return False
    task.result()
    return True
