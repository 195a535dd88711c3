"""Flood control: one limiter per bot token, shared by every concurrent handler.

Defaults and their sources (Telegram Bot FAQ, "My bot is hitting limits, how do I avoid this?"):

- overall: 30 requests/s — "no more than 30 messages per second" for bulk notifications;
- per user chat: 1 message/s — "avoid sending more than one message per second" in one chat;
- per channel: 20 membership calls/s — Telegram publishes no figure for getChatMember,
  banChatMember or createChatInviteLink; 20/s keeps one busy channel from taking the whole
  budget while leaving room for the others.

A 429 pauses every handler of the bot for ``retry_after`` (one shared deadline), not just the
one that was refused. The overall window and that deadline form the token's ``FloodBudget``:
in this process by default, or shared by every worker of the token (``budget``, see
botqueue.telegram.flood); per-chat windows are always this process's, by the same rule.
A pause longer than ``max_hold`` seconds is not waited out: the call raises a retryable error
carrying the remaining pause, so the message goes back to the queue with that visibility
instead of holding a worker slot.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import TelegramRetryableError
from .flood import Budget, FloodBudget, Grant

T = TypeVar("T")

_MAX_CHAT_WINDOWS = 10_000


class _Paused(Exception):
    """The token was paused while a call waited for its slots: wait the pause out, again."""


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests per second: overall, per user chat (messages), per channel (membership)."""

    overall: float = 30.0
    per_user_chat: float = 1.0
    per_channel: float = 20.0
    max_hold: float = 5.0
    """Longest 429 pause waited out in place; longer ones hand the message back."""


@dataclass
class FloodStats:
    """Counters of flood control: 429 answers received and seconds spent paused."""

    rate_limited: int = 0
    paused_seconds: float = 0.0
    handed_back: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    budget: FloodBudget | None = field(default=None, repr=False, compare=False)

    @property
    def budget_shared(self) -> bool | None:
        """True while the token's budget is shared with other workers, False while this
        worker runs on its fallback share, None when the budget is this process's."""
        return None if self.budget is None else self.budget.shared


class FloodLimiter:
    """Paces a bot's calls and pauses them all after a 429."""

    def __init__(self, limits: RateLimits | None = None, budget: FloodBudget | None = None) -> None:
        self.limits = limits or RateLimits()
        self.budget: FloodBudget = budget or Budget(None, self.limits.overall)
        self.clock = self.budget.clock
        self.stats = FloodStats(budget=self.budget)
        self._chats: OrderedDict[tuple[str, str], Budget] = OrderedDict()

    def _window(self, scope: str, chat: str) -> Budget:
        key = (scope, chat)
        window = self._chats.get(key)
        if window is None:
            rate = self.limits.per_user_chat if scope == "user" else self.limits.per_channel
            window = self._chats[key] = Budget(None, rate, clock=self.clock)
            if len(self._chats) > _MAX_CHAT_WINDOWS:
                self._forget_idle()
        self._chats.move_to_end(key)
        return window

    def _forget_idle(self) -> None:
        for key in [k for k, w in self._chats.items() if w.idle][: len(self._chats) // 2]:
            del self._chats[key]

    def pause(self, seconds: float) -> None:
        """Pause every call of this bot for ``seconds`` (after a 429)."""
        self.stats.rate_limited += 1
        now = self.clock.now()
        until, paused_until = now + seconds, self.budget.paused_until()
        if until > paused_until:
            self.stats.paused_seconds += until - max(paused_until, now)
        self.budget.pause(seconds)

    def remaining_pause(self) -> float:
        """Seconds left of the bot's flood pause (0 when it is not paused); with a shared
        budget, a pause another worker began is seen here within a heartbeat."""
        return max(0.0, self.budget.paused_until() - self.clock.now())

    async def _wait_out_pause(self, max_hold: float) -> None:
        while (remaining := self.remaining_pause()) > 0:
            if remaining > max_hold:
                self.stats.handed_back += 1
                raise TelegramRetryableError(
                    f"flood control: bot paused for {remaining:.0f} s more",
                    reason="flood",
                    retry_after=remaining,
                )
            await self.clock.sleep(remaining)

    async def call(
        self,
        method: str,
        send: Callable[[], Awaitable[T]],
        *,
        scope: str = "",
        chat: str = "",
        max_hold: float | None = None,
        server_hold: float = 0.0,
    ) -> T:
        """Run ``send()`` within the limits; ``scope`` is "user" or "channel" for ``chat``.

        A 429 (TelegramRetryableError with reason "flood") pauses everyone; when the pause is
        at most ``max_hold`` seconds (default: the limits' max_hold) the call is made again
        here, otherwise the error propagates. ``server_hold``: seconds Telegram is known to
        hold this call's answer after counting it; when the call takes at least that long, its
        slots (the token's and the chat's) cool down from that much before the answer.
        """
        hold = self.limits.max_hold if max_hold is None else max_hold
        while True:
            await self._wait_out_pause(hold)
            try:
                return await self._call_once(send, scope, chat, server_hold)
            except _Paused:
                continue
            except TelegramRetryableError as error:
                if error.reason != "flood" or error.retry_after is None:
                    raise
                self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
                self.pause(error.retry_after)
                if error.retry_after > hold:
                    self.stats.handed_back += 1
                    raise

    async def _call_once(
        self, send: Callable[[], Awaitable[T]], scope: str, chat: str, server_hold: float
    ) -> T:
        """One attempt: the chat's slot, then the token's (maybe shared) last, then the call."""
        held: list[tuple[Budget | FloodBudget, Grant]] = []
        sent_at: float | None = None
        answered = False
        try:
            if scope:
                window = self._window(scope, chat)
                chat_grant = await window.acquire()
                if chat_grant is None:  # never: nothing pauses a chat's window
                    raise _Paused
                held.append((window, chat_grant))
            grant = await self.budget.acquire()
            if grant is None:  # a pause began while this call waited for its slots
                raise _Paused
            held.append((self.budget, grant))
            sent_at = self.clock.now()  # after every wait: the legs are credited from here
            result = await send()
            answered = True
            return result
        finally:
            completed_at = self.clock.now()
            # The chat's first: in memory, it cannot fail and leave the slot held.
            for budget, granted in held:
                await budget.release(
                    granted, sent_at, completed_at, answered=answered, server_hold=server_hold
                )

    async def aclose(self) -> None:
        """Close the budget (a shared one gives back this worker's lease)."""
        await self.budget.aclose()
