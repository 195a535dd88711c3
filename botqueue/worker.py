"""The worker process: a consumer with signal handling, as ``botqueue worker`` runs it."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal

import structlog

from .config import Settings
from .consumer import BotQueueConsumer
from .errors import ConfigurationError, FatalError
from .loader import load_service
from .logs import register_secret
from .observability.setup import WorkerObservability
from .service import BotService
from .telegram.limiter import RateLimits
from .telegram.service import TelegramBotService
from .transports import open_transport
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
    return telegram_service(settings)


def telegram_service(settings: Settings) -> TelegramBotService:
    """The Telegram service configured by the TELEGRAM_* settings."""
    assert settings.telegram_bot_token is not None
    return TelegramBotService(
        settings.telegram_bot_token.get_secret_value(),
        api_url=settings.telegram_api_base_url,
        invite_expiry=dt.timedelta(seconds=settings.telegram_invite_link_ttl),
        limits=RateLimits(
            overall=settings.telegram_rate_limit,
            per_user_chat=settings.telegram_user_chat_rate,
            per_channel=settings.telegram_channel_rate,
            max_hold=settings.telegram_max_flood_hold,
        ),
        request_timeout=settings.telegram_request_timeout,
    )


async def start_service(service: BotService) -> None:
    """Call the service's optional ``start()``; a rejected token is a configuration error."""
    start = getattr(service, "start", None)
    if start is None:
        return
    try:
        await start()
    except FatalError as error:
        raise ConfigurationError(f"TELEGRAM_BOT_TOKEN: {error}") from None


async def close_service(service: BotService) -> None:
    """Call the service's optional ``aclose()``."""
    aclose = getattr(service, "aclose", None)
    if aclose is not None:
        await aclose()


async def run_worker(
    settings: Settings, service: BotService, *, drain: bool = False, drop_permanent: bool = False
) -> None:
    """Consume until SIGTERM or SIGINT (or until drained), then shut down gracefully.

    Raises:
        ConfigurationError: the service refused to start (e.g. the bot token is invalid).
        FatalError: the service stopped the worker mid-run; the messages stay queued.
    """
    if settings.telegram_bot_token is not None:
        register_secret(settings.telegram_bot_token.get_secret_value())
    observability = WorkerObservability(settings, service)
    # Before the service starts, so that /healthz answers (and /readyz says why not) meanwhile.
    await observability.start()
    try:
        await start_service(service)
        observability.service_started()
        try:
            await _consume(
                settings, service, observability, drain=drain, drop_permanent=drop_permanent
            )
        finally:
            await close_service(service)
    finally:
        await observability.aclose()


async def _consume(
    settings: Settings,
    service: BotService,
    observability: WorkerObservability,
    *,
    drain: bool,
    drop_permanent: bool,
) -> None:
    transport = open_transport(
        settings.bot_operations_queue_url,
        settings.bot_operations_dlq_url,
        visibility_timeout=settings.botqueue_visibility_timeout,
    )
    try:
        # On SQS: one warning line per queue attribute that would defeat retries or the DLQ.
        await check_at_start(transport, grace_period=settings.botqueue_grace_period)
    except BaseException:
        await transport.aclose()
        raise
    consumer = BotQueueConsumer(
        service,
        transport,
        concurrency=settings.botqueue_concurrency,
        visibility_timeout=settings.botqueue_visibility_timeout,
        wait_time_seconds=settings.botqueue_wait_time,
        grace_period=settings.botqueue_grace_period,
        drop_permanent=drop_permanent,
        drain=drain,
        hooks=observability.hooks,
    )
    observability.attach(consumer, transport)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def on_signal(signum: signal.Signals) -> None:
        log.info("shutting down", signal=signum.name, held=consumer.held)
        observability.stopping()
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
        await observability.detach()
        await transport.aclose()
    log.info("worker stopped")
