"""The Telegram bot's bot-wide conditions: a flood pause (the limiter's) or an outage (the
breaker's), as the consumer asks for them (botqueue.bot_state.BotState)."""

from __future__ import annotations

import asyncio

from ..service import Unavailable
from .breaker import CircuitBreaker, is_outage_failure
from .errors import TelegramRetryableError
from .limiter import FloodLimiter


class TelegramBotState:
    """Whether the bot can call Telegram now: not while flood control or an outage pauses it."""

    def __init__(self, limiter: FloodLimiter, breaker: CircuitBreaker) -> None:
        self.limiter = limiter
        self.breaker = breaker

    def unavailable(self) -> Unavailable | None:
        """None when calls may go out; otherwise the pause and how long it has left."""
        if self.breaker.is_open:
            return Unavailable("telegram_unavailable", self.breaker.until_next_probe())
        pause = self.limiter.remaining_pause()
        return Unavailable("flood", pause) if pause > 0 else None

    async def wait_available(self) -> None:
        """Return once neither a flood pause nor an outage holds the bot."""
        while (pause := self.unavailable()) is not None:
            if pause.reason == "telegram_unavailable":
                await self.breaker.wait_closed()
            else:
                await asyncio.sleep(pause.remaining or 0.0)

    async def absorbs(self, error: BaseException, key: object) -> bool:
        """A 429 (the limiter has paused the whole bot) or a failure that is part of an
        outage is the bot's condition; anything else is the operation's own failure."""
        if isinstance(error, TelegramRetryableError) and error.reason == "flood":
            return True
        if is_outage_failure(error):
            return await self.breaker.absorbs(key)
        return False

    def paused_seconds(self) -> dict[str, float]:
        """Seconds the bot has spent paused, by reason (for the metrics)."""
        return {
            "flood": self.limiter.stats.paused_seconds,
            "telegram_unavailable": self.breaker.unavailable_seconds,
        }
