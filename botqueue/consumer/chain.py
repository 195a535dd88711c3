"""One group's messages, run one after another: the group-chain rule of the worker and Lambda.

Order holds within a message group. A group's messages from one receive run in order; the
first one not settled (retrying, handed back) ends the chain, and the messages behind it go
back to the queue unprocessed, never run ahead of it. The worker and the Lambda handler use
this same runner; they differ only in when the rest becomes visible again (``rest_delay``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from ..transports.base import ReceivedMessage
from .hooks import operation_fields
from .processor import Decision, MessageProcessor, Retrying, Settled

log = structlog.get_logger("botqueue.consumer")

RestDelay = Callable[[Decision | None], "float | None"]
"""The visibility for a chain's unprocessed rest, given the decision of the message that
failed (None: the chain was stopped, not failed); returning None leaves them in flight."""


async def _nothing(count: int) -> None:
    return None


def by_group(messages: Sequence[ReceivedMessage]) -> list[list[ReceivedMessage]]:
    """Messages split into chains by group, in delivery order within each."""
    chains: dict[str, list[ReceivedMessage]] = {}
    for message in messages:
        # A standard queue has no groups, hence no order: each message stands alone.
        chains.setdefault(message.group_id or message.message_id, []).append(message)
    return list(chains.values())


@dataclass
class ChainRunner:
    """Runs chains of one group each through the processor."""

    processor: MessageProcessor
    stopping: asyncio.Event
    rest_delay: RestDelay = lambda decision: 0.0
    on_finished: Callable[[int], Awaitable[None]] = _nothing
    """Called with how many messages are no longer held (processed or handed back)."""

    async def run(self, chain: Sequence[ReceivedMessage]) -> list[ReceivedMessage]:
        """Process ``chain`` in order; the messages left unsettled, the failed one first."""
        index = 0
        failed: Decision | None = None
        try:
            while index < len(chain) and not self.stopping.is_set():
                decision = await self._process(chain[index])
                index += 1
                await self.on_finished(1)
                if not isinstance(decision, Settled):
                    failed = decision
                    break
        finally:
            # Unstarted (or interrupted) messages go back, in order, never run ahead of a
            # failed one: the group stays blocked while that one is in flight.
            rest = chain[index:]
            if rest:
                await asyncio.shield(self._hand_back(rest, self.rest_delay(failed)))
        return ([chain[index - 1]] if failed is not None else []) + list(rest)

    async def _process(self, message: ReceivedMessage) -> Decision:
        try:
            return await self.processor.process(message)
        except Exception:
            # A bug, not a failed operation: leave the message in flight so it comes back
            # after its visibility timeout, and keep the worker alive.
            self.processor.keeper.release(message.receipt)
            log.exception("internal error while processing", **operation_fields(None, message))
            return Retrying(None)

    async def _hand_back(self, messages: Sequence[ReceivedMessage], delay: float | None) -> None:
        keeper = self.processor.keeper
        for message in messages:
            keeper.release(message.receipt)
        if delay is not None:
            try:
                # Under the keeper's lock, so an extension in progress cannot overwrite it.
                async with keeper.lock:
                    await self.processor.transport.change_visibility_batch(
                        [(message.receipt, delay) for message in messages]
                    )
            except Exception as error:
                log.warning("could not hand messages back", error=repr(error), count=len(messages))
        await self.on_finished(len(messages))
