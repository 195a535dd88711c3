"""The worker process: a consumer with signal handling, as ``botqueue worker`` runs it."""

from __future__ import annotations

import asyncio
import signal

import structlog

from .config import Settings
from .consumer import BotQueueConsumer
from .errors import ConfigurationError
from .loader import load_service
from .service import BotService
from .transports import open_transport

log = structlog.get_logger("botqueue.worker")


def service_from_settings(settings: Settings) -> BotService:
    """The service named by BOTQUEUE_SERVICE / --service.

    Raises:
        ConfigurationError: none is named, or it cannot be loaded.
    """
    if not settings.botqueue_service:
        raise ConfigurationError(
            "no bot service: pass --service module:attribute (or set BOTQUEUE_SERVICE)"
        )
    return load_service(settings.botqueue_service)


async def run_worker(
    settings: Settings, service: BotService, *, drain: bool = False, drop_permanent: bool = False
) -> None:
    """Consume until SIGTERM or SIGINT (or until drained), then shut down gracefully."""
    transport = open_transport(
        settings.bot_operations_queue_url,
        settings.bot_operations_dlq_url,
        visibility_timeout=settings.botqueue_visibility_timeout,
    )
    consumer = BotQueueConsumer(
        service,
        transport,
        concurrency=settings.botqueue_concurrency,
        visibility_timeout=settings.botqueue_visibility_timeout,
        wait_time_seconds=settings.botqueue_wait_time,
        grace_period=settings.botqueue_grace_period,
        drop_permanent=drop_permanent,
        drain=drain,
    )
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def on_signal(signum: signal.Signals) -> None:
        log.info("shutting down", signal=signum.name, held=consumer.held)
        if not stopping:
            stopping.append(loop.create_task(consumer.stop()))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    log.info(
        "worker started",
        concurrency=consumer.concurrency,
        visibilityTimeout=consumer.visibility_timeout,
        drain=drain,
    )
    try:
        await consumer.run()
        if stopping:
            await stopping[0]
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await transport.aclose()
    log.info("worker stopped")
