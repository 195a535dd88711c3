"""Queue gauges refreshed in the background, and a transport wrapper that counts sends.

A scrape only reads the gauges: the queue is asked at a fixed interval, however often (or
however many) Prometheus servers scrape, so scraping never adds load on SQS or SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from ..transports.base import (
    DeadLetter,
    OutgoingMessage,
    QueueStats,
    ReceivedMessage,
    SendResult,
    Transport,
)
from .metrics import Metrics

log = structlog.get_logger("botqueue.metrics")


class QueueGauges:
    """Sets the queue-depth, oldest-age and DLQ gauges from ``transport.stats()`` every
    ``interval`` seconds, in a task of its own."""

    def __init__(self, metrics: Metrics, transport: Transport, interval: float = 15.0) -> None:
        self.metrics = metrics
        self.transport = transport
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> QueueStats | None:
        """Ask the queue once and set the gauges; on failure count it and keep the old values."""
        try:
            # Bounded by the interval, so a hung queue never stacks up refreshes.
            stats = await asyncio.wait_for(self.transport.stats(), self.interval)
        except Exception as error:
            self.metrics.stats_errors.inc()
            log.warning("could not read queue stats", error=repr(error))
            return None
        self.metrics.visible.set(stats.visible)
        self.metrics.queue_in_flight.set(stats.in_flight)
        self.metrics.oldest_age.set(stats.oldest_age_seconds)
        self.metrics.dlq_depth.set(stats.dead_letters)
        self.metrics.stats_updated.set(time.time())
        return stats

    def start(self) -> None:
        """Refresh now and then every ``interval`` seconds until aclose()."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="botqueue-queue-gauges")

    async def _loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        """Stop refreshing."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class MeteredTransport:
    """A Transport that counts the messages it sends into ``botqueue_messages_sent_total``.

    For a producer process that serves its own metrics::

        producer = BotQueueProducer(MeteredTransport(open_transport(url), metrics))
    """

    def __init__(self, inner: Transport, metrics: Metrics, queue: str = "main") -> None:
        self.inner = inner
        self._sent = metrics.sent.labels(queue)

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send, then count the entries that were accepted."""
        results = await self.inner.send_batch(messages)
        self._sent.inc(sum(1 for result in results if result.message_id is not None))
        return results

    async def receive(
        self,
        max_messages: int = 10,
        *,
        wait_seconds: float = 20.0,
        visibility_timeout: float | None = None,
    ) -> list[ReceivedMessage]:
        """Delegate to the wrapped transport."""
        return await self.inner.receive(
            max_messages, wait_seconds=wait_seconds, visibility_timeout=visibility_timeout
        )

    async def delete_batch(self, receipts: Sequence[str]) -> list[str]:
        """Delegate to the wrapped transport."""
        return await self.inner.delete_batch(receipts)

    async def change_visibility_batch(self, changes: Sequence[tuple[str, float]]) -> list[str]:
        """Delegate to the wrapped transport."""
        return await self.inner.change_visibility_batch(changes)

    async def dead_letter(self, message: ReceivedMessage, failure: Mapping[str, Any]) -> None:
        """Delegate to the wrapped transport."""
        await self.inner.dead_letter(message, failure)

    async def stats(self) -> QueueStats:
        """Delegate to the wrapped transport."""
        return await self.inner.stats()

    async def dlq_list(self, limit: int | None = None) -> list[DeadLetter]:
        """Delegate to the wrapped transport."""
        return await self.inner.dlq_list(limit)

    async def dlq_redrive(self, message_ids: Sequence[str] | None = None) -> int:
        """Delegate to the wrapped transport."""
        return await self.inner.dlq_redrive(message_ids)

    async def dlq_purge(self) -> int:
        """Delegate to the wrapped transport."""
        return await self.inner.dlq_purge()

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()
