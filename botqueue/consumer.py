"""BotQueueConsumer: long-polls the queue and runs operations, ordered within each group."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Sequence

import structlog

from .bot_state import BotState, bot_state_of, first_of
from .errors import FatalError
from .hooks import ConsumerHooks, HookSet, LoggingHooks, operation_fields
from .inflight import AckBuffer, VisibilityKeeper
from .processor import MessageProcessor
from .receive_outage import ReceiveOutage
from .retry import Backoff
from .service import BotService
from .transports.base import ReceivedMessage, Transport
from .transports.configured import configured_transport

log = structlog.get_logger("botqueue.consumer")

_DRAIN_POLL_SECONDS = 0.05
_PAUSE_POLL_SECONDS = 1.0


def _describe(state: BotState) -> str:
    pause = state.unavailable()
    return pause.describe() if pause is not None else "available"


class BotQueueConsumer:
    """Consumes bot operations: ``await start()``, then ``await stop()`` for a graceful end.

    Up to ``concurrency`` messages are held at once, across groups; messages of one group run
    one after another. ``run()`` runs until stopped (or, with ``drain``, until the queue is
    empty and nothing is in flight).
    """

    def __init__(
        self,
        service: BotService,
        transport: Transport | None = None,
        *,
        queue_url: str | None = None,
        dlq_url: str | None = None,
        concurrency: int = 10,
        visibility_timeout: float = 30.0,
        wait_time_seconds: float = 20.0,
        grace_period: float = 30.0,
        operation_timeout: float | None = None,
        backoff: Backoff | None = None,
        drop_permanent: bool = False,
        hooks: Sequence[ConsumerHooks] = (),
        log_operations: bool = True,
        drain: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._owns_transport = transport is None
        # No transport and no URL: the configured queue, as the worker command reads it.
        self.transport = transport or configured_transport(
            queue_url, dlq_url, visibility_timeout=visibility_timeout
        )
        self.concurrency = concurrency
        self.visibility_timeout = visibility_timeout
        self.wait_time_seconds = wait_time_seconds
        self.grace_period = grace_period
        self.drain = drain
        all_hooks = [LoggingHooks(), *hooks] if log_operations else list(hooks)
        self.hooks = HookSet(all_hooks)
        self._stopping = asyncio.Event()
        self.bot_state = bot_state_of(service)
        self.acks = AckBuffer(self.transport, on_deleted=self.hooks.on_deleted)
        self.keeper = VisibilityKeeper(self.transport, visibility_timeout)
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
            operation_timeout=operation_timeout,
            bot_state=self.bot_state,
            stopping=self._stopping,
        )
        self.fatal_error: FatalError | None = None
        self._held = 0
        self._capacity = asyncio.Condition()
        self._chains: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
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
        """Start consuming in the background and return."""
        if self._loop_task is not None:
            return
        self.keeper.start()
        self._loop_task = asyncio.create_task(self._receive_loop(), name="botqueue-receive")

    async def run(self) -> None:
        """Consume until stopped (or drained), then shut down gracefully.

        Raises:
            FatalError: a service error stopped the worker (its message was handed back).
        """
        await self.start()
        assert self._loop_task is not None
        await asyncio.shield(self._loop_task)
        await self._shutdown()
        if self.fatal_error is not None:
            raise self.fatal_error

    async def stop(self) -> None:
        """Stop receiving, finish or hand back what is held, and release the transport."""
        self._stopping.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await self._shutdown()

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
        receive = asyncio.ensure_future(
            self.transport.receive(
                count,
                wait_seconds=wait,
                visibility_timeout=self.visibility_timeout,
            )
        )
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({receive, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not receive.done():
            # Transports hand back anything they had claimed when a receive is cancelled.
            receive.cancel()
        try:
            return await receive
        except asyncio.CancelledError:
            if receive.cancelled() and not self._cancelling():
                return []
            raise

    @staticmethod
    def _cancelling() -> bool:
        # True when it is this task, not the receive, that is being cancelled.
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    async def _drained(self) -> bool:
        if self._held:
            return False
        await self.acks.flush()
        stats = await self.transport.stats()
        return stats.visible == 0 and stats.in_flight == 0

    # -- running groups -------------------------------------------------------------------

    def _start_chains(self, messages: list[ReceivedMessage]) -> None:
        chains: dict[str, list[ReceivedMessage]] = {}
        for message in messages:
            chains.setdefault(message.group_id, []).append(message)
            self.keeper.hold(message)
        self._held += len(messages)
        for chain in chains.values():
            task = asyncio.create_task(self._run_chain(chain))
            self._chains.add(task)
            task.add_done_callback(self._chains.discard)

    async def _run_chain(self, chain: list[ReceivedMessage]) -> None:
        index = 0
        try:
            while index < len(chain) and not self._stopping.is_set():
                settled = await self._process(chain[index])
                index += 1
                await self._free(1)
                if not settled:
                    break
        finally:
            # Unstarted (or interrupted) messages go back at once, in order, never run ahead of
            # a failed one: the group stays blocked while that one is in flight.
            rest = chain[index:]
            if rest:
                await asyncio.shield(self._hand_back(rest))

    async def _process(self, message: ReceivedMessage) -> bool:
        try:
            return await self.processor.process(message)
        except Exception:
            # A bug, not a failed operation: leave the message in flight so it comes back
            # after its visibility timeout, and keep the worker alive.
            self.keeper.release(message.receipt)
            log.exception("internal error while processing", **operation_fields(None, message))
            return False

    async def _hand_back(self, messages: list[ReceivedMessage]) -> None:
        for message in messages:
            self.keeper.release(message.receipt)
        try:
            async with self.keeper.lock:
                await self.transport.change_visibility_batch([(m.receipt, 0.0) for m in messages])
        except Exception as error:
            log.warning("could not hand messages back", error=repr(error), count=len(messages))
        await self._free(len(messages))

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
        if self._owns_transport:
            await self.transport.aclose()
            self._owns_transport = False
