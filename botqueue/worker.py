"""The worker process: a consumer with signal handling, as ``botqueue worker`` runs it."""

from __future__ import annotations

import datetime as dt
import signal

import structlog

from .config import Settings
from .consumer import BotQueueConsumer
from .errors import ConfigurationError
from .loader import load_service
from .logs import register_secret
from .observability.setup import WorkerObservability
from .service import BotService
from .startup import StopSignals, start_service
from .telegram.breaker import BreakerSettings
from .telegram.flood import open_budget
from .telegram.limiter import RateLimits, limiter_for
from .telegram.links import open_ledger
from .telegram.service import TelegramBotService
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
    return telegram_service(settings)


def telegram_service(settings: Settings) -> TelegramBotService:
    """The Telegram service configured by the TELEGRAM_* settings."""
    assert settings.telegram_bot_token is not None
    token = settings.telegram_bot_token.get_secret_value()
    limits = RateLimits(
        overall=settings.telegram_rate_limit,
        per_user_chat=settings.telegram_user_chat_rate,
        per_channel=settings.telegram_channel_rate,
        max_hold=settings.telegram_max_flood_hold,
    )
    # Telegram limits the token, not the process: every worker of it draws on one budget.
    budget = open_budget(
        settings.telegram_rate_limit,
        token=token,
        url=settings.telegram_rate_limit_url,
        queue_url=settings.bot_operations_queue_url,
        lease=settings.telegram_rate_limit_lease,
        fallback_share=settings.telegram_rate_limit_fallback_share,
    )
    return TelegramBotService(
        token,
        api_url=settings.telegram_api_base_url,
        invite_expiry=dt.timedelta(seconds=settings.telegram_invite_link_ttl),
        limits=limits,
        limiter=limiter_for(token, limits, budget),
        request_timeout=settings.telegram_request_timeout,
        breaker=BreakerSettings(
            failures=settings.telegram_breaker_failures,
            window=settings.telegram_breaker_window,
            probe_max=settings.telegram_breaker_max_probe_interval,
        ),
        # Outlives a killed worker when it is a file (the embedded queue's default) or, with
        # SQS, the flood budget's Redis: workers sharing a budget share their links too.
        links=open_ledger(
            token,
            url=settings.telegram_invite_ledger_url,
            queue_url=settings.bot_operations_queue_url,
            rate_limit_url=settings.telegram_rate_limit_url,
        ),
    )


async def close_service(service: BotService) -> None:
    """Call the service's optional ``aclose()``, then close its flood limiter's budget.

    The worker owns its process, so it gives back a shared budget's lease here, while the
    loop still runs, rather than leaving it to the cancellation of tasks at exit.
    """
    aclose = getattr(service, "aclose", None)
    if aclose is not None:
        await aclose()
    close_limiter = getattr(getattr(service, "limiter", None), "aclose", None)
    if close_limiter is not None:
        await close_limiter()


async def run_worker(
    settings: Settings, service: BotService, *, drain: bool = False, drop_permanent: bool = False
) -> None:
    """Consume until SIGTERM or SIGINT (or until drained), then shut down gracefully.

    The service is started first, through Telegram's blips (see botqueue.startup); a signal
    during start-up ends the run at once.

    Raises:
        ConfigurationError: the service refused to start (e.g. the bot token is invalid).
        FatalError: the service stopped the worker mid-run; the messages stay queued.
    """
    if settings.telegram_bot_token is not None:
        register_secret(settings.telegram_bot_token.get_secret_value())
    observability = WorkerObservability(settings, service)
    # Before the service starts, so that /healthz answers (and /readyz says why not) meanwhile.
    await observability.start()
    consumers: list[BotQueueConsumer] = []

    def on_signal(signum: signal.Signals) -> None:
        log.info("shutting down", signal=signum.name, held=consumers[0].held if consumers else 0)
        observability.stopping()

    signals = StopSignals(on_signal)
    signals.install()
    try:
        if not await start_service(service, signals.requested):
            log.info("worker stopped before the service started")
            return
        observability.service_started()
        try:
            await _consume(
                settings,
                service,
                observability,
                signals,
                drain=drain,
                drop_permanent=drop_permanent,
                consumers=consumers,
            )
        finally:
            await close_service(service)
    finally:
        signals.uninstall()
        await observability.aclose()


async def _consume(
    settings: Settings,
    service: BotService,
    observability: WorkerObservability,
    signals: StopSignals,
    *,
    drain: bool,
    drop_permanent: bool,
    consumers: list[BotQueueConsumer],
) -> None:
    transport = configured_transport(
        settings=settings, visibility_timeout=settings.botqueue_visibility_timeout
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
        operation_timeout=settings.botqueue_operation_timeout,
        drop_permanent=drop_permanent,
        drain=drain,
        hooks=observability.hooks,
    )
    observability.attach(consumer, transport)
    consumers.append(consumer)
    signals.when_stopped(consumer.stop)
    log.info(
        "worker started",
        concurrency=consumer.concurrency,
        visibilityTimeout=consumer.visibility_timeout,
        drain=drain,
    )
    try:
        await consumer.run()
        await signals.stopped()
    finally:
        await observability.detach()
        await transport.aclose()
    log.info("worker stopped")
