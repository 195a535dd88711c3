"""BotQueueConsumer: starts the service, long-polls the queue and runs each group's chain."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

import structlog

from ..errors import FatalError
from ..retry import Backoff
from ..service import BotService, BotState, Lifecycle
from ..transports.base import ReceivedMessage, Transport
from ..transports.configured import configured_transport
from .chain import ChainRunner, by_group
from .hooks import ConsumerHooks, HookSet, LoggingHooks
from .inflight import AckBuffer, VisibilityKeeper
from .outage import ReceiveOutage
from .processor import MessageProcessor
from .setup import ConsumerOptions, configure_process, load_configuration
from .startup import start_service
from .waits import first_of, receive_unless_stopped

if TYPE_CHECKING:
    from ..config import Settings

log = structlog.get_logger("botqueue.consumer")

_DRAIN_POLL_SECONDS = 0.05
_PAUSE_POLL_SECONDS = 1.0


def _describe(state: BotState) -> str:
    pause = state.unavailable()
    return pause.describe() if pause is not None else "available"


class BotQueueConsumer:
    """Consumes bot operations: ``await start()`` (or ``async with``), then ``await stop()``.

    ``start()`` starts the service first (its declared ``start()``, retried through Telegram's
    blips, as the worker does), then receives in the background. Up to ``concurrency``
    messages are held at once, across groups; messages of one group run one after another.
    ``run()`` runs until stopped (or, with ``drain``, until the queue is empty and nothing is
    in flight). ``stop()`` finishes or hands back what is held and closes the service.

    Without a transport, the consumer reads the worker's configuration (botqueue.config:
    the queue URLs and BOTQUEUE_* settings, the log level); arguments given override it.
    """

    def __init__(
        self,
        service: BotService,
        transport: Transport | None = None,
        *,
        queue_url: str | None = None,
        dlq_url: str | None = None,
        concurrency: int | None = None,
        visibility_timeout: float | None = None,
        wait_time_seconds: float | None = None,
        grace_period: float | None = None,
        operation_timeout: float | None = None,
        backoff: Backoff | None = None,
        drop_permanent: bool = False,
        hooks: Sequence[ConsumerHooks] = (),
        log_operations: bool = True,
        drain: bool = False,
        rng: random.Random | None = None,
        settings: Settings | None = None,
    ) -> None:
        if transport is None and settings is None:
            settings = load_configuration()
        self.settings = settings
        options = ConsumerOptions.resolve(
            settings,
            concurrency=concurrency,
            visibility_timeout=visibility_timeout,
            wait_time_seconds=wait_time_seconds,
            grace_period=grace_period,
            operation_timeout=operation_timeout,
        )
        self._owns_transport = transport is None
        # No transport and no URL: the configured queue, as the worker command reads it.
        self.transport = transport or configured_transport(
            queue_url, dlq_url, settings=settings, visibility_timeout=options.visibility_timeout
        )
        self.concurrency = options.concurrency
        self.visibility_timeout = options.visibility_timeout
        self.wait_time_seconds = options.wait_time_seconds
        self.grace_period = options.grace_period
        self.drain = drain
        all_hooks = [LoggingHooks(), *hooks] if log_operations else list(hooks)
        self.hooks = HookSet(all_hooks)
        self._stopping = asyncio.Event()
        self.lifecycle = Lifecycle.of(service)
        """What the service declares beyond its operations (start, aclose, bot state)."""
        self.bot_state = self.lifecycle.bot_state
        self.acks = AckBuffer(self.transport, on_deleted=self.hooks.on_deleted)
        self.keeper = VisibilityKeeper(self.transport, self.visibility_timeout)
        self.processor = MessageProcessor(
            service,
            self.transport,
            self.acks,
            self.keeper,
            self.hooks,
            backoff=backoff or Backoff(),
            drop_permanent=drop_permanent,
            rng=rng or random.Random(),
            on_fatal=self._on_fatal,
            operation_timeout=options.operation_timeout,
            bot_state=self.bot_state,
            stopping=self._stopping,
        )
        self.chains = ChainRunner(self.processor, self._stopping, on_finished=self._free)
        self.fatal_error: FatalError | None = None
        self._held = 0
        self._capacity = asyncio.Condition()
        self._chains: set[asyncio.Task[list[ReceivedMessage]]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._service_started = False
        self.last_poll = time.monotonic()
        """time.monotonic() of the receive loop's latest iteration (liveness checks read it)."""

    def _on_fatal(self, error: FatalError) -> None:
        if self.fatal_error is None:
            log.error("stopping: the worker cannot go on", error=str(error))
            self.fatal_error = error
        self._stopping.set()

    @property
    def held(self) -> int:
        """Messages received and not yet settled or handed back."""
        return self._held

    async def start(self) -> None:
        """Start the service, then consume in the background; return once consuming.

        Returns early, consuming nothing, when ``stop()`` comes during the service's start.

        Raises:
            ConfigurationError: the service refused to start (e.g. the token was rejected).
        """
        if self._loop_task is not None or self._stopping.is_set():
            return
        if self.settings is not None:
            configure_process(self.settings)
        try:
            started = await start_service(self.lifecycle, self._stopping)
        except BaseException:
            await self._shutdown()
            raise
        if not started:
            log.info("stopped before the service started")
            return
        self._service_started = True
        self.hooks.on_service_started()
        self.keeper.start()
        self._loop_task = asyncio.create_task(self._receive_loop(), name="botqueue-receive")

    async def run(self) -> None:
        """Start, consume until stopped (or drained), then shut down gracefully.

        Raises:
            ConfigurationError: the service refused to start.
            FatalError: a service error stopped the worker (its message was handed back).
        """
        await self.start()
        if self._loop_task is not None:
            await asyncio.shield(self._loop_task)
        await self._shutdown()
        if self.fatal_error is not None:
            raise self.fatal_error

    async def stop(self) -> None:
        """Stop receiving, finish or hand back what is held, close the service and release
        the transport."""
        self._stopping.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self._shutdown()

    async def __aenter__(self) -> BotQueueConsumer:
        """``start()``."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """``stop()``."""
        await self.stop()

    # -- receiving ------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        outage = ReceiveOutage()
        # Whether the latest receive came back short. A full one proves the queue is not
        # drained, so the drain check (a count over the whole queue) is skipped after it.
        maybe_empty = True
        while not self._stopping.is_set():
            self.last_poll = time.monotonic()
            async with self._capacity:
                await self._capacity.wait_for(lambda: self._held < self.concurrency)
            self.last_poll = time.monotonic()
            if not await self._while_bot_unavailable():
                break
            count = min(10, self.concurrency - self._held)
            try:
                # The drain check counts the queue: it fails like a receive when the queue does.
                if self.drain and maybe_empty and await self._drained():
                    log.info("queue drained")
                    self._stopping.set()
                    break
                messages = await self._receive_or_stop(count)
            except Exception as error:
                delay = outage.failed(error)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                continue
            outage.succeeded()
            maybe_empty = len(messages) < count
            if messages:
                self.hooks.on_received(messages)
            self._start_chains(messages)

    async def _while_bot_unavailable(self) -> bool:
        """Receive nothing while the bot is paused; False if the worker stops meanwhile."""
        state = self.bot_state
        if state is None or state.unavailable() is None:
            return True
        log.info("not receiving while the bot is paused", why=_describe(state))
        while state.unavailable() is not None:
            # In short steps, so that liveness (last_poll) sees a loop that is alive.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    first_of(state.wait_available(), self._stopping), _PAUSE_POLL_SECONDS
                )
            if self._stopping.is_set():
                return False
            self.last_poll = time.monotonic()
        log.info("receiving again: the bot is available")
        return True

    async def _receive_or_stop(self, count: int) -> list[ReceivedMessage]:
        # Draining, an empty answer is what ends the run: poll briefly rather than sit out a
        # whole long poll after the last message.
        wait = self.wait_time_seconds
        if self.drain:
            wait = min(wait, _DRAIN_POLL_SECONDS)
        receive = self.transport.receive(
            count, wait_seconds=wait, visibility_timeout=self.visibility_timeout
        )
        return await receive_unless_stopped(receive, self._stopping)

    async def _drained(self) -> bool:
        if self._held:
            return False
        await self.acks.flush()
        stats = await self.transport.stats()
        return stats.visible == 0 and stats.in_flight == 0

    # -- running groups -------------------------------------------------------------------

    def _start_chains(self, messages: list[ReceivedMessage]) -> None:
        for message in messages:
            self.keeper.hold(message)
        self._held += len(messages)
        for chain in by_group(messages):
            task = asyncio.create_task(self.chains.run(chain))
            self._chains.add(task)
            task.add_done_callback(self._chains.discard)

    async def _free(self, count: int) -> None:
        async with self._capacity:
            self._held -= count
            self._capacity.notify_all()

    # -- shutdown -------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        if self._chains:
            _, pending = await asyncio.wait(set(self._chains), timeout=self.grace_period)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("grace period over, handing back operations", count=len(pending))
                await asyncio.wait(pending)
        await self.keeper.stop()
        await self.acks.flush()
        if self._service_started:
            # The consumer started the service, so it closes it (a shared budget's lease is
            # given back here, while the loop still runs).
            self._service_started = False
            await self.lifecycle.aclose()
        if self._owns_transport:
            await self.transport.aclose()
            self._owns_transport = False
