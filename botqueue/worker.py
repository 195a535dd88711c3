"""The worker process: the library's consumer, with signals and observability around it.

``botqueue worker`` and ``BotQueueConsumer(TelegramBotService())`` take the same path: the
service is built from the settings by TelegramBotService.from_settings, and the consumer
starts it (getMe through Telegram's blips), runs it and closes it. This module adds only
what a process of its own needs: signal handling, the metrics and health server, the start-up
checks of an SQS queue.
"""

from __future__ import annotations

import signal
from collections.abc import Callable

import structlog

from .config import Settings
from .consumer import BotQueueConsumer, ConsumerHooks, StopSignals
from .errors import ConfigurationError
from .loader import load_service
from .observability.setup import WorkerObservability
from .service import BotService
from .transports.base import Transport
from .transports.configured import configured_transport
from .transports.sqs_checks import check_at_start

log = structlog.get_logger("botqueue.worker")


def service_from_settings(settings: Settings) -> BotService:
    """The service named by --service / BOTQUEUE_SERVICE, else the Telegram service.

    Raises:
        ConfigurationError: it cannot be loaded, or the Telegram token is missing.
    """
    if settings.botqueue_service:
        return load_service(settings.botqueue_service)
    if settings.telegram_bot_token is None:
        raise ConfigurationError(
            "TELEGRAM_BOT_TOKEN is not set (or pass --service module:attribute)"
        )
    from .telegram import TelegramBotService

    return TelegramBotService.from_settings(settings)


class _OnServiceStarted(ConsumerHooks):
    """Calls back once the consumer has started the service."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def on_service_started(self) -> None:
        """Call the callback."""
        self.callback()


async def run_worker(
    settings: Settings, service: BotService, *, drain: bool = False, drop_permanent: bool = False
) -> None:
    """Consume until SIGTERM or SIGINT (or until drained), then shut down gracefully.

    The consumer starts the service first, through Telegram's blips (see
    botqueue.consumer.startup); a signal during start-up ends the run at once.

    Raises:
        ConfigurationError: the service refused to start (e.g. the bot token is invalid).
        FatalError: the service stopped the worker mid-run; the messages stay queued.
    """
    observability = WorkerObservability(settings, service)
    # Before the service starts, so that /healthz answers (and /readyz says why not) meanwhile.
    await observability.start()
    try:
        transport = configured_transport(
            settings=settings, visibility_timeout=settings.botqueue_visibility_timeout
        )
        try:
            # On SQS: one warning line per queue attribute that would defeat retries or the DLQ.
            await check_at_start(transport, grace_period=settings.botqueue_grace_period)
            await _consume(settings, service, transport, observability, drain, drop_permanent)
        finally:
            await observability.detach()
            await transport.aclose()
    finally:
        await observability.aclose()


async def _consume(
    settings: Settings,
    service: BotService,
    transport: Transport,
    observability: WorkerObservability,
    drain: bool,
    drop_permanent: bool,
) -> None:
    consumer: BotQueueConsumer | None = None

    def started() -> None:
        assert consumer is not None
        observability.service_started()
        observability.attach(consumer, transport)
        log.info(
            "worker started",
            concurrency=consumer.concurrency,
            visibilityTimeout=consumer.visibility_timeout,
            drain=drain,
        )

    consumer = BotQueueConsumer(
        service,
        transport,
        settings=settings,
        drop_permanent=drop_permanent,
        drain=drain,
        hooks=[*observability.hooks, _OnServiceStarted(started)],
    )

    def on_signal(signum: signal.Signals) -> None:
        held = consumer.held if consumer is not None else 0
        log.info("shutting down", signal=signum.name, held=held)
        observability.stopping()

    signals = StopSignals(on_signal)
    signals.install()
    signals.when_stopped(consumer.stop)
    try:
        await consumer.run()
        await signals.stopped()
    finally:
        signals.uninstall()
    log.info("worker stopped")
