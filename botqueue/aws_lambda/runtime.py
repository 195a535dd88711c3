"""What warm invocations share (one event loop, the service, the transports) and one
invocation, from the SQS event to the partial batch response."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from typing import Any

import structlog

from ..config import Settings, load_settings
from ..consumer import (
    AckBuffer,
    HookSet,
    LoggingHooks,
    MessageProcessor,
    VisibilityKeeper,
    start_service,
)
from ..errors import ConfigurationError, FatalError
from ..logs import configure_logging, flush_logs, register_secret
from ..service import BotService, Lifecycle
from ..transports.base import ReceivedMessage
from ..transports.sqs import SqsTransport
from ..transports.sqs_checks import check_at_start
from ..transports.sqs_client import resolve_client_config
from ..worker import service_from_settings
from .batch import Deadline, DeadlineBotState, GroupRunner
from .records import BatchResponse, LambdaContext, QueueArn, failures, records_by_queue

log = structlog.get_logger("botqueue.aws_lambda")

_UNSUPPORTED = ("bot_operations_outcomes_url", "botqueue_outcome_hook")


def _remaining_seconds(context: LambdaContext | None) -> float | None:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else None


async def _cancel_the_rest() -> None:
    # What the clients left running (a breaker's probe, a budget's heartbeat), as asyncio.run
    # would at its end.
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class LambdaRuntime:
    """The event loop, settings, started service and transports of one Lambda instance,
    created on first use and kept for its warm invocations."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.settings: Settings | None = None
        self.service: BotService | None = None
        self.started = False
        self.transports: dict[str, SqsTransport] = {}
        self.hooks = HookSet([LoggingHooks()])

    def invoke(self, event: Mapping[str, Any], context: LambdaContext | None) -> BatchResponse:
        """Handle one event on the runtime's own event loop (Lambda calls handlers
        synchronously; asyncio.run per call would strand the clients bound to its loop)."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
        try:
            return self.loop.run_until_complete(self._invoke(event, context))
        except ConfigurationError as error:
            # Lambda then fails the whole batch (nothing of it was settled) and logs the error.
            log.error("configuration error: the whole batch fails", error=str(error))
            raise
        finally:
            # Lines are written by a thread; Lambda freezes the process once we return.
            flush_logs()

    async def _invoke(
        self, event: Mapping[str, Any], context: LambdaContext | None
    ) -> BatchResponse:
        queues = records_by_queue(event)
        if not queues:
            return failures([])
        settings = self._configure()
        arns = {arn: QueueArn.parse(arn) for arn in queues}
        # The service as the worker of this queue would build it: with no queue URL
        # configured, the flood budget would be taken for an embedded queue's file.
        url = next(iter(arns.values())).queue_url(settings)
        for_service = settings.model_copy(update={"bot_operations_queue_url": url})
        deadline = Deadline.after(_remaining_seconds(context))
        try:
            service = await self._started_service(for_service, deadline)
            if service is None:
                # Telegram did not answer before the deadline: everything comes back after
                # the queue's visibility timeout, which paces the next try.
                held = [message.message_id for batch in queues.values() for message in batch]
                log.warning("the bot service did not start in time", count=len(held))
                return failures(held)
            fatal: list[FatalError] = []
            reported: list[str] = []
            for arn, messages in queues.items():
                reported += await self._run(settings, service, arns[arn], messages, deadline, fatal)
        finally:
            deadline.cancel()
        if fatal:
            # The token was refused mid-batch: start afresh next time (getMe then raises a
            # ConfigurationError), and fail this invocation visibly.
            await self._forget_service()
            raise fatal[0]
        return failures(reported)

    async def _run(
        self,
        settings: Settings,
        service: BotService,
        arn: QueueArn,
        messages: list[ReceivedMessage],
        deadline: Deadline,
        fatal: list[FatalError],
    ) -> list[str]:
        transport = await self._transport(settings, arn)

        def on_fatal(error: FatalError) -> None:
            fatal.append(error)
            deadline.expire()

        state = Lifecycle.of(service).bot_state
        acks = AckBuffer(transport, on_deleted=self.hooks.on_deleted)
        processor = MessageProcessor(
            service,
            transport,
            acks,
            # Never started: the function's timeout, which the queue's visibility timeout
            # must exceed for Lambda to accept the mapping, already bounds every message.
            VisibilityKeeper(transport, settings.botqueue_visibility_timeout),
            self.hooks,
            on_fatal=on_fatal,
            bot_state=DeadlineBotState(state, deadline) if state is not None else None,
            stopping=deadline.stopping,
        )
        self.hooks.on_received(messages)
        runner = GroupRunner(processor, deadline, settings.botqueue_concurrency)
        try:
            return await runner.run(messages)
        finally:
            # Settled messages are deleted here, not left to Lambda: a timeout or an error
            # after this point cannot make them run again.
            await acks.flush()

    def _configure(self) -> Settings:
        if self.settings is None:
            settings = load_settings()
            for name in _UNSUPPORTED:
                if getattr(settings, name):
                    raise ConfigurationError(
                        f"{name.upper()}: outcome events are not published by the Lambda "
                        "handler (unset it, or run the worker)"
                    )
            token = settings.telegram_bot_token
            secret = token.get_secret_value() if token is not None else None
            register_secret(secret)
            if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
                # On Lambda (not when a test or a tool calls the handler): JSON lines to
                # stdout, which CloudWatch Logs collects.
                configure_logging(
                    settings.botqueue_log_level, stream=sys.stdout, json=True, token=secret
                )
            self.settings = settings
        return self.settings

    async def _started_service(self, settings: Settings, deadline: Deadline) -> BotService | None:
        if self.service is None:
            self.service = service_from_settings(settings)
        if not self.started:
            if not await start_service(Lifecycle.of(self.service), deadline.stopping):
                return None
            self.started = True
        return self.service

    async def _transport(self, settings: Settings, arn: QueueArn) -> SqsTransport:
        url = arn.queue_url(settings)
        transport = self.transports.get(url)
        if transport is None:
            # The ARN's region signs the requests, as a queue URL's does in the worker.
            config = resolve_client_config(url, region=arn.region)
            transport = SqsTransport(
                url,
                settings.bot_operations_dlq_url,
                visibility_timeout=settings.botqueue_visibility_timeout,
                client_config=None if settings.bot_operations_queue_url else config,
            )
            try:
                # Finds the DLQ now (a missing one is a ConfigurationError, not a dead letter
                # that fails later) and warns about attributes that would defeat retries.
                await check_at_start(transport, grace_period=0)
            except BaseException:
                await transport.aclose()
                raise
            self.transports[url] = transport
        return transport

    async def _forget_service(self) -> None:
        service, self.service, self.started = self.service, None, False
        if service is not None:
            await Lifecycle.of(service).aclose()

    async def _aclose(self) -> None:
        await self._forget_service()
        transports, self.transports = list(self.transports.values()), {}
        for transport in transports:
            await transport.aclose()

    def close(self) -> None:
        """Close the service, the transports and the event loop (tests and tools; Lambda
        itself never ends an instance politely)."""
        loop, self.loop = self.loop, None
        if loop is None:
            return
        try:
            loop.run_until_complete(self._aclose())
            loop.run_until_complete(_cancel_the_rest())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
            self.settings = None
