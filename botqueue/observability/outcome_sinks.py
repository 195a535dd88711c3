"""Where outcome events go: an outcomes queue (batched, in the background) and a user hook.

Consumer hooks are synchronous and must not wait, so the publisher only queues an event;
a task of its own sends them in batches of up to 10 and flushes what is left at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
from collections.abc import Callable
from typing import Any

import structlog

from ..errors import ConfigurationError
from ..transports.base import Transport
from .metrics import Metrics
from .outcomes import OutcomeEvent

log = structlog.get_logger("botqueue.outcomes")

OutcomeHook = Callable[[OutcomeEvent], Any]
"""A user function called with each event; it may be a coroutine function."""

_BATCH = 10
_RETRY_CAP = 30.0


class OutcomePublisher:
    """Publishes events to an outcomes queue; call it with an event, ``start()`` it, and
    ``aclose()`` it to flush (within ``flush_timeout``) and close the transport."""

    def __init__(
        self,
        transport: Transport,
        metrics: Metrics | None = None,
        *,
        max_pending: int = 100_000,
        flush_timeout: float = 10.0,
        retry_base: float = 1.0,
    ) -> None:
        self.transport = transport
        self.metrics = metrics
        self.flush_timeout = flush_timeout
        self.retry_base = retry_base
        self._queue: asyncio.Queue[OutcomeEvent] = asyncio.Queue(max_pending)
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.lost = 0

    def __call__(self, event: OutcomeEvent) -> None:
        """Queue an event for publishing (never blocks; when far behind, the event is lost)."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lost += 1
            log.error("outcomes queue unreachable for too long: event lost", **_ids(event))

    def start(self) -> None:
        """Start publishing in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="botqueue-outcomes")

    async def _loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._send(batch)
            for _ in batch:
                self._queue.task_done()

    async def _send(self, batch: list[OutcomeEvent]) -> None:
        failures = 0
        while True:
            try:
                results = await self.transport.send_batch([e.to_message() for e in batch])
            except Exception as error:
                # The outcomes queue is down: keep the events, in order, and try again.
                failures += 1
                delay = min(self.retry_base * 2.0 ** (failures - 1), _RETRY_CAP)
                log.warning("could not publish outcomes", error=repr(error), retryInSeconds=delay)
                await asyncio.sleep(delay)
                continue
            break
        for event, result in zip(batch, results, strict=True):
            if result.message_id is None:
                # Refused for good (too large, malformed): retrying the same entry cannot help.
                self.lost += 1
                log.error("outcome event refused", error=result.error, **_ids(event))
            else:
                self.sent += 1
                if self.metrics is not None:
                    self.metrics.sent.labels("outcomes").inc()

    async def aclose(self) -> None:
        """Send what is queued (giving up after ``flush_timeout``), then close the transport."""
        if self._task is not None:
            try:
                await asyncio.wait_for(self._queue.join(), self.flush_timeout)
            except TimeoutError:
                log.error("outcome events not published at shutdown", count=self._queue.qsize())
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.transport.aclose()


class OutcomeHookRunner:
    """Calls the user's hook with each event; a hook that raises is logged, never fatal.

    A synchronous hook runs on the worker's event loop, so it should be quick; a coroutine
    function runs as a task of its own.
    """

    def __init__(
        self, hook: OutcomeHook, metrics: Metrics | None = None, *, close_timeout: float = 10.0
    ) -> None:
        self.hook = hook
        self.metrics = metrics
        self.close_timeout = close_timeout
        self._tasks: set[asyncio.Future[Any]] = set()

    def __call__(self, event: OutcomeEvent) -> None:
        """Run the hook for one event."""
        try:
            result = self.hook(event)
        except Exception as error:
            self._failed(event, error)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(lambda done: self._finished(event, done))

    def _finished(self, event: OutcomeEvent, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            assert isinstance(error, BaseException)
            self._failed(event, error)

    def _failed(self, event: OutcomeEvent, error: BaseException) -> None:
        if self.metrics is not None:
            self.metrics.outcome_hook_errors.inc()
        log.error(
            "outcome hook raised",
            error=repr(error),
            errorType=type(error).__name__,
            status=event.status,
            **_ids(event),
        )

    async def aclose(self) -> None:
        """Wait (up to ``close_timeout``) for hook calls still running."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.close_timeout)


def load_outcome_hook(spec: str) -> OutcomeHook:
    """Import ``module:function`` (BOTQUEUE_OUTCOME_HOOK).

    Raises:
        ConfigurationError: the spec is malformed, does not import, or is not callable.
    """
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ConfigurationError(f"BOTQUEUE_OUTCOME_HOOK must be module:function, not {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
        for part in name.split("."):
            target = getattr(target, part)
    except Exception as error:  # a broken module is a configuration problem, not a crash
        raise ConfigurationError(
            f"BOTQUEUE_OUTCOME_HOOK: cannot load {spec!r}: {type(error).__name__}: {error}"
        ) from None
    if not callable(target):
        raise ConfigurationError(f"BOTQUEUE_OUTCOME_HOOK: {spec!r} is not callable")
    hook: OutcomeHook = target
    return hook


def _ids(event: OutcomeEvent) -> dict[str, Any]:
    fields: dict[str, Any] = {"messageId": event.message_id, "attempt": event.attempts}
    if event.operation_type is not None:
        fields["operationType"] = event.operation_type
    for key in ("channelId", "userId", "subscriptionId", "listingId"):
        if event.operation is not None and key in event.operation:
            fields[key] = event.operation[key]
    return fields
