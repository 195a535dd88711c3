"""Everything a worker observes, built from its settings: metrics, health server, outcomes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import structlog

from ..config import Settings
from ..consumer import BotQueueConsumer, ConsumerHooks
from ..errors import ConfigurationError
from ..service import BotService, Lifecycle
from ..transports import DEFAULT_URL, open_transport
from ..transports.base import Transport
from .bot_metrics import BotStateCollector
from .gauges import QueueGauges
from .health import HealthState
from .metrics import Metrics, MetricsHooks
from .outcome_sinks import OutcomeHookRunner, OutcomePublisher, load_outcome_hook
from .outcomes import OutcomeHooks, OutcomeSink
from .server import ObservabilityServer

log = structlog.get_logger("botqueue.worker")

OUTCOMES_QUEUE = "bot-operations-outcomes"
"""The queue name an sqlite:/// outcomes URL gets when it names none (so that the outcomes can
share the main queue's file without becoming operations)."""


def outcomes_url(url: str, settings: Settings) -> str:
    """The outcomes URL, with the default queue name for the embedded queue.

    Raises:
        ConfigurationError: it names the main queue or the DLQ (events would loop back).
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite" and "queue" not in parse_qs(parsed.query):
        # Appended as text: urlunparse would drop the empty authority of sqlite:////abs/path.
        url = f"{url}{'&' if parsed.query else '?'}{urlencode({'queue': OUTCOMES_QUEUE})}"
    main = _queue_key(settings.bot_operations_queue_url or DEFAULT_URL)
    dlq = settings.bot_operations_dlq_url
    # Without a DLQ URL the embedded DLQ is "<name>-dlq" in the main queue's file.
    taken = {main, _queue_key(dlq) if dlq else f"{main}-dlq"}
    if _queue_key(url) in taken:
        raise ConfigurationError(
            "BOT_OPERATIONS_OUTCOMES_URL must be a queue of its own, not the main queue or DLQ"
        )
    return url


def _queue_key(url: str) -> str:
    # The same embedded queue can be spelt with different paths or option orders.
    parsed = urlparse(url)
    if parsed.scheme != "sqlite":
        return url.rstrip("/")
    name = parse_qs(parsed.query).get("queue", ["bot-operations"])[-1]
    return f"sqlite:{Path(parsed.path[1:]).expanduser().resolve()}?{name}"


class WorkerObservability:
    """Builds and runs the worker's metrics, health server and outcome sinks.

    ``start()`` before the bot service starts (so /healthz answers during start-up),
    ``attach()`` the consumer, ``aclose()`` at the end (it flushes the outcome events).
    """

    def __init__(self, settings: Settings, service: BotService) -> None:
        self.settings = settings
        port = settings.botqueue_metrics_port
        self.metrics = Metrics() if port is not None else None
        self.health = HealthState(
            poll_bound=settings.botqueue_liveness_timeout + settings.botqueue_wait_time
        )
        self.server = (
            ObservabilityServer(
                self.health,
                self.metrics.registry if self.metrics else None,
                host=settings.botqueue_metrics_host,
                port=port,
            )
            if port is not None
            else None
        )
        self.hooks: list[ConsumerHooks] = [MetricsHooks(self.metrics)] if self.metrics else []
        self.publisher: OutcomePublisher | None = None
        self.runner: OutcomeHookRunner | None = None
        self.gauges: QueueGauges | None = None
        sinks: list[OutcomeSink] = []
        if settings.botqueue_outcome_hook:
            hook = load_outcome_hook(settings.botqueue_outcome_hook)
            self.runner = OutcomeHookRunner(hook, self.metrics)
            sinks.append(self.runner)
        if settings.bot_operations_outcomes_url:
            url = outcomes_url(settings.bot_operations_outcomes_url, settings)
            self.publisher = OutcomePublisher(open_transport(url), self.metrics)
            sinks.append(self.publisher)
        if sinks:
            self.hooks.append(OutcomeHooks(sinks))
        lifecycle = Lifecycle.of(service)
        self.health.bot_state = lifecycle.bot_state
        if self.metrics is not None:
            _observe(self.metrics, lifecycle)
            if lifecycle.bot_state is not None:
                self.metrics.registry.register(
                    BotStateCollector(lifecycle.bot_state, lifecycle.paused_seconds)
                )

    async def start(self) -> None:
        """Start the heartbeat, the server and the outcome publisher."""
        self.health.start()
        if self.server is not None:
            await asyncio.to_thread(self.server.start)
            log.info("observability server listening", url=self.server.url)
        if self.publisher is not None:
            self.publisher.start()

    def service_started(self) -> None:
        """The bot service started (its token was accepted): readiness may pass."""
        self.health.service_started = True

    def stopping(self) -> None:
        """The worker is shutting down: readiness fails from now on."""
        self.health.stopping = True

    def attach(self, consumer: BotQueueConsumer, transport: Transport) -> None:
        """Watch the consumer (liveness, in-flight gauge) and its queue (depth gauges)."""
        self.health.attach(consumer, transport)
        if self.metrics is not None:
            self.metrics.track_in_flight(lambda: consumer.held)
            self.gauges = QueueGauges(
                self.metrics, transport, interval=self.settings.botqueue_stats_interval
            )
            self.gauges.start()

    async def detach(self) -> None:
        """Stop reading the queue (before its transport closes)."""
        self.stopping()
        if self.gauges is not None:
            await self.gauges.aclose()

    async def aclose(self) -> None:
        """Flush outcome events, wait for hook calls, stop the server."""
        await self.detach()
        if self.runner is not None:
            await self.runner.aclose()
        if self.publisher is not None:
            await self.publisher.aclose()
        await self.health.aclose()
        if self.server is not None:
            await asyncio.to_thread(self.server.stop)


def _observe(metrics: Metrics, lifecycle: Lifecycle) -> None:
    # Any service declaring botqueue.service.Observable is observed; this module never imports
    # python-telegram-bot.
    if lifecycle.add_request_observer is not None:
        lifecycle.add_request_observer(metrics.observe_request)
    if lifecycle.flood_stats is not None:
        metrics.track_flood(lifecycle.flood_stats)
