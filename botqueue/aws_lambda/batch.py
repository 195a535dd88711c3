"""One invocation's batch: its groups run at once, each in order, stopping at its first failure.

AWS's rule for FIFO queues with partial batch responses is to stop at the first failure and
report it with every message after it. Order holds within a message group only, so the rule
is applied per group: a group's failed message and its later ones are reported (and handed
back behind it, so that the failed one's retry delay is what holds the group); the other
groups go on.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import structlog

from ..consumer import ChainRunner, Decision, MessageProcessor, Retrying, by_group
from ..consumer.processor import HandedBack
from ..service import BotState, Unavailable
from ..transports.base import ReceivedMessage

log = structlog.get_logger("botqueue.aws_lambda")

DEADLINE_MARGIN_SECONDS = 5.0
"""Kept back from the function's remaining time: to hand messages back and send deletes."""


@dataclass
class Deadline:
    """When the invocation stops waiting: pauses end and no further message starts."""

    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    at: float = math.inf
    """Event-loop time of the deadline (infinite without a Lambda context)."""
    _timer: asyncio.TimerHandle | None = None

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        """A deadline ``seconds`` from now, less the margin (None: none)."""
        deadline = cls()
        if seconds is not None:
            loop = asyncio.get_running_loop()
            wait = max(0.0, seconds - DEADLINE_MARGIN_SECONDS)
            deadline.at = loop.time() + wait
            deadline._timer = loop.call_later(wait, deadline.stopping.set)
        return deadline

    def left(self) -> float:
        """Seconds until the deadline."""
        return max(0.0, self.at - asyncio.get_running_loop().time())

    def expire(self) -> None:
        """Stop now."""
        self.stopping.set()

    def cancel(self) -> None:
        """Forget the timer (the invocation is over)."""
        if self._timer is not None:
            self._timer.cancel()


class DeadlineBotState:
    """The service's bot state, with waits that end at the invocation's deadline.

    A flood pause known to outlast the deadline is not waited for at all: the whole batch
    stops at once (the pause is the bot's, so every group would wait for it), and each held
    message goes back with the rest of the pause as its visibility.
    """

    def __init__(self, inner: BotState, deadline: Deadline) -> None:
        self.inner = inner
        self.deadline = deadline

    def unavailable(self) -> Unavailable | None:
        """The service's answer."""
        return self.inner.unavailable()

    async def absorbs(self, error: BaseException, key: object) -> bool:
        """The service's answer."""
        return await self.inner.absorbs(error, key)

    async def wait_available(self) -> None:
        """Wait for the bot, or, for a pause that cannot end in time, stop the invocation."""
        pause = self.inner.unavailable()
        if pause is not None and pause.reason == "flood" and self._outlasts(pause.remaining):
            log.info(
                "the bot's pause outlasts the invocation: handing the batch back",
                why=pause.describe(),
            )
            # The processor sees the deadline once this returns, and hands its message back.
            self.deadline.expire()
            return
        await self.inner.wait_available()

    def _outlasts(self, remaining: float | None) -> bool:
        return remaining is not None and remaining > self.deadline.left()


def pause_left(state: BotState | None) -> float:
    """Seconds the bot is still paused for (0 when it is available or nobody knows)."""
    pause = state.unavailable() if state is not None else None
    return (pause.remaining or 0.0) if pause is not None else 0.0


@dataclass
class GroupRunner:
    """Runs an invocation's messages through the shared chain runner; returns the ones to
    report as failures."""

    processor: MessageProcessor
    deadline: Deadline
    concurrency: int = 10

    async def run(self, messages: Sequence[ReceivedMessage]) -> list[str]:
        """Process every group; the message ids to report as failures, in delivery order."""
        chains = ChainRunner(self.processor, self.deadline.stopping, rest_delay=self._rest_delay)
        limit = asyncio.Semaphore(self.concurrency)

        async def group(chain: list[ReceivedMessage]) -> list[ReceivedMessage]:
            async with limit:
                return await chains.run(chain)

        reported = await asyncio.gather(*(group(chain) for chain in by_group(messages)))
        failed = {message.message_id for chain in reported for message in chain}
        return [message.message_id for message in messages if message.message_id in failed]

    def _rest_delay(self, ended: Decision | None) -> float | None:
        """The visibility for the messages behind a failed one: never shorter than its own.

        Stopped at the deadline before the chain's next message: visible at once, or when
        the bot's pause ends, so that a new invocation does not receive them only to wait.
        SQS keeps a group locked while one of its messages is in flight, but LocalStack does
        not: a later message made visible at once would overtake the failed one there. Set
        after the failed one's, the same delay makes them visible just after it. None (leave
        them in flight) when the failed one was left in flight (no delay is known).
        """
        pause = pause_left(self.processor.bot_state)
        if ended is None:
            return pause
        delay = ended.seconds if isinstance(ended, Retrying | HandedBack) else None
        if self.deadline.stopping.is_set() and pause:
            # Handed back for a pause: the processor's delay was the pause then, rounded up to
            # whole seconds; one more second keeps the rest behind it.
            return max(delay or 0.0, pause + 1.0)
        return delay
