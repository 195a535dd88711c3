"""Processing one received message: decode, perform, then settle, retry or hand it back."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import structlog

from ..errors import DecodeError, FatalError, OperationError, OperationTimeoutError
from ..failure import FailureKind, FailureRecord
from ..logs import redact_secrets, redact_value
from ..operations import AnyOperation, decode_operation
from ..retry import Backoff, DeadLetterIt, Drop, RetryIn, decide
from ..service import BotService, BotState, Outcome, dispatch
from ..transports.base import ReceivedMessage, Transport
from .hooks import ConsumerHooks, operation_fields
from .inflight import AckBuffer, VisibilityKeeper
from .waits import first_of

log = structlog.get_logger("botqueue.consumer")


@dataclass(frozen=True, slots=True)
class Settled:
    """The message is off the queue: done, dead-lettered or dropped."""

    how: Literal["done", "dead_lettered", "dropped"]


@dataclass(frozen=True, slots=True)
class Retrying:
    """The attempt failed; the message is visible again in ``seconds`` (None: after its
    visibility timeout, when it could not be settled, e.g. the DLQ refused the write)."""

    seconds: float | None


@dataclass(frozen=True, slots=True)
class HandedBack:
    """Not attempted (or its attempt not counted): given back, visible in ``seconds``, because
    the bot is paused beyond the consumer's stop or a fatal error stops the worker."""

    seconds: float


Decision = Settled | Retrying | HandedBack
"""What the processor did with one message. Anything but Settled blocks its group."""


@dataclass
class MessageProcessor:
    """Runs one message through the service and settles it on the queue."""

    service: BotService
    transport: Transport
    acks: AckBuffer
    keeper: VisibilityKeeper
    hooks: ConsumerHooks
    backoff: Backoff = field(default_factory=Backoff)
    drop_permanent: bool = False
    rng: random.Random = field(default_factory=random.Random)
    on_fatal: Callable[[FatalError], None] = lambda error: None
    operation_timeout: float | None = None
    """Seconds one attempt may take before it fails as OperationTimeoutError (None: no limit)."""
    bot_state: BotState | None = None
    """The service's bot-wide conditions (botqueue.service.BotState), when it reports them."""
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the worker stops: a wait for the bot ends and hands its message back."""
    _named_returns: set[tuple[str, str]] = field(default_factory=set, init=False, repr=False)

    async def process(self, message: ReceivedMessage) -> Decision:
        """Process a message and settle, retry or hand it back; say which."""
        try:
            op = decode_operation(message.body)
        except DecodeError as error:
            return await self._dead_letter(None, message, error, "undecodable")
        if (handed_back := await self._until_available(op, message, None)) is not None:
            return handed_back
        self.hooks.on_started(op, message)
        started = time.monotonic()
        while True:
            try:
                result: object = await self._perform(op)
            except Exception as error:  # every failure is settled below; nothing crashes it
                if not await self._bot_wide(error, message):
                    return await self._failed(op, message, error)
                # The bot's condition, not the operation's: run it again once the bot is
                # available, in place, so no attempt and no receive is counted for it.
                if (handed_back := await self._until_available(op, message, error)) is not None:
                    return handed_back
                continue
            break
        outcome = result if isinstance(result, Outcome) else self._as_outcome(result, op)
        self.keeper.release(message.receipt)
        self.acks.ack(message.receipt)
        self.hooks.on_success(op, message, outcome, time.monotonic() - started)
        return Settled("done")

    async def _perform(self, op: AnyOperation) -> object:
        if self.operation_timeout is None:
            return await dispatch(self.service, op)
        try:
            async with asyncio.timeout(self.operation_timeout):
                return await dispatch(self.service, op)
        except TimeoutError:
            # A hung call (or a service that never returns) must not hold its group forever:
            # it is a failed attempt like any other, and its retries are counted.
            raise OperationTimeoutError(
                f"operation did not finish within {self.operation_timeout:g} s"
            ) from None

    async def _bot_wide(self, error: Exception, message: ReceivedMessage) -> bool:
        if self.bot_state is None or isinstance(error, FatalError):
            return False
        try:
            return await self.bot_state.absorbs(error, message.message_id)
        except Exception:  # a broken bot state must not lose the operation's own retry
            log.exception("bot state raised; retrying the operation on its own schedule")
            return False

    async def _until_available(
        self, op: AnyOperation, message: ReceivedMessage, error: Exception | None
    ) -> HandedBack | None:
        """Wait while the bot is paused (the keeper extends the message's visibility); when
        the worker stops first, hand the message back for the rest of the pause."""
        state = self.bot_state
        if state is None or state.unavailable() is None:
            return None
        # Available again, unless the wait ended because the consumer (or an invocation's
        # deadline) is stopping: then the message goes back for the rest of the pause.
        if await first_of(state.wait_available(), self.stopping) and not self.stopping.is_set():
            return None
        pause = state.unavailable()
        delay = pause.remaining if pause is not None and pause.remaining else 0.0
        await self._retry_later(op, message, error, delay, log_retry=False)
        return HandedBack(delay)

    def _as_outcome(self, result: object, op: AnyOperation) -> Outcome:
        # None is Python's "void": a plain success. Anything else that is not an Outcome is
        # still a success (the service did not raise), named once per type so the log is not
        # flooded with one line per operation.
        if result is not None:
            key = (op.operation_type, type(result).__name__)
            if key not in self._named_returns:
                self._named_returns.add(key)
                log.warning(
                    "service returned a value that is not an Outcome; counted as succeeded",
                    service=type(self.service).__name__,
                    operationType=op.operation_type,
                    returnedType=type(result).__name__,
                )
        return Outcome()

    async def _failed(
        self, op: AnyOperation, message: ReceivedMessage, error: Exception
    ) -> Decision:
        if isinstance(error, FatalError):
            # Not this message's fault: put it back untouched and stop the worker.
            await self._retry_later(op, message, error, 0.0, log_retry=False)
            self.on_fatal(error)
            return HandedBack(0.0)
        decision = decide(
            error,
            message.receive_count,
            op.max_retries,
            backoff=self.backoff,
            drop_permanent=self.drop_permanent,
            rng=self.rng,
        )
        if isinstance(decision, RetryIn):
            await self._retry_later(op, message, error, decision.seconds)
            return Retrying(decision.seconds)
        if isinstance(decision, DeadLetterIt):
            return await self._dead_letter(op, message, error, decision.kind)
        assert isinstance(decision, Drop)
        self.keeper.release(message.receipt)
        self.acks.ack(message.receipt)
        self.hooks.on_dropped(op, message, error)
        return Settled("dropped")

    async def _retry_later(
        self,
        op: AnyOperation,
        message: ReceivedMessage,
        error: Exception | None,
        delay: float,
        *,
        log_retry: bool = True,
    ) -> None:
        # Under the keeper's lock, so an extension in progress cannot overwrite the delay.
        self.keeper.release(message.receipt)
        async with self.keeper.lock:
            try:
                await self.transport.change_visibility_batch([(message.receipt, delay)])
            except Exception as change_error:
                # The message reappears after its current visibility timeout instead.
                log.warning(
                    "could not schedule retry",
                    error=repr(change_error),
                    **operation_fields(op, message),
                )
        if log_retry and error is not None:
            self.hooks.on_retry(op, message, error, delay)

    async def _dead_letter(
        self,
        op: AnyOperation | None,
        message: ReceivedMessage,
        error: Exception,
        kind: FailureKind,
    ) -> Settled | Retrying:
        record = FailureRecord(
            # The DLQ outlives the logs and is read by people: never let the token into it.
            error=redact_secrets(str(error)),
            kind=kind,
            attempts=message.receive_count,
            first_attempt_at=message.first_received_at,
            last_attempt_at=time.time(),
            original_message_id=message.message_id,
            error_type=type(error).__name__,
            operation_type=op.operation_type if op is not None else None,
        ).to_dict()
        if isinstance(error, OperationError) and error.detail:
            # The reason code (and e.g. an undelivered invite link) is what an operator or an
            # outcome hook acts on; JSON-safe, since transports store the record as JSON.
            record["detail"] = json.loads(json.dumps(redact_value(error.detail), default=str))
        self.keeper.release(message.receipt)
        try:
            await self.transport.dead_letter(message, record)
        except Exception as dlq_error:
            # Left in flight: it comes back after the visibility timeout and is tried again.
            log.error(
                "could not write dead letter",
                error=repr(dlq_error),
                kind=kind,
                **operation_fields(op, message),
            )
            return Retrying(None)
        self.hooks.on_dead_letter(op, message, record)
        return Settled("dead_lettered")
