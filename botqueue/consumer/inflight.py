"""Bookkeeping for received messages: batched deletes and visibility extension."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import structlog

from ..transports.base import ReceivedMessage, Transport

log = structlog.get_logger("botqueue.consumer")


class AckBuffer:
    """Collects deletes and sends them in batches of 10, or after ``interval`` seconds."""

    def __init__(
        self,
        transport: Transport,
        interval: float = 0.02,
        on_deleted: Callable[[int], None] = lambda count: None,
    ) -> None:
        self.transport = transport
        self.on_deleted = on_deleted
        self.interval = interval
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def ack(self, receipt: str) -> None:
        """Queue a delete; the message stays in flight until it is sent."""
        self._pending.append(receipt)
        if len(self._pending) >= 10:
            self._start_flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._start_flush)

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            batch, self._pending = self._pending[:10], self._pending[10:]
            task = asyncio.create_task(self._send(batch))
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    async def _send(self, receipts: Sequence[str]) -> None:
        try:
            failed = await self.transport.delete_batch(receipts)
        except Exception as error:
            # The messages reappear after their visibility timeout and run again; handlers are
            # idempotent, so this costs a repeat, never a loss.
            log.warning("delete failed", error=repr(error), count=len(receipts))
            return
        if failed:
            log.warning("delete matched no message (visibility expired?)", count=len(failed))
        self.on_deleted(len(receipts) - len(failed))

    async def flush(self) -> None:
        """Send everything pending and wait for it."""
        self._start_flush()
        while self._flushes:
            await asyncio.gather(*list(self._flushes), return_exceptions=True)


class VisibilityKeeper:
    """Extends the visibility of held messages before it runs out, so slowness never causes
    a second delivery."""

    def __init__(self, transport: Transport, visibility_timeout: float) -> None:
        self.transport = transport
        self.visibility_timeout = visibility_timeout
        self.lock = asyncio.Lock()
        self._deadlines: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    def hold(self, message: ReceivedMessage) -> None:
        """Start watching a received message."""
        self._deadlines[message.receipt] = self._now() + self.visibility_timeout

    def release(self, receipt: str) -> None:
        """Stop watching a message (done, retried or handed back)."""
        self._deadlines.pop(receipt, None)

    def start(self) -> None:
        """Run the extension loop in the background."""
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Stop the extension loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _loop(self) -> None:
        tick = max(self.visibility_timeout / 3, 0.05)
        while True:
            await asyncio.sleep(tick)
            async with self.lock:
                due = [
                    receipt
                    for receipt, deadline in self._deadlines.items()
                    if deadline - self._now() < self.visibility_timeout / 2
                ]
                for start in range(0, len(due), 10):
                    await self._extend(due[start : start + 10])

    async def _extend(self, receipts: list[str]) -> None:
        try:
            failed = await self.transport.change_visibility_batch(
                [(receipt, self.visibility_timeout) for receipt in receipts]
            )
        except Exception as error:
            log.warning("visibility extension failed", error=repr(error), count=len(receipts))
            return
        deadline = self._now() + self.visibility_timeout
        for receipt in receipts:
            if receipt in self._deadlines and receipt not in failed:
                self._deadlines[receipt] = deadline
