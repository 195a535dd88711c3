"""Prometheus metrics of one worker: its own registry, consumer hooks, Telegram observers.

Label values come from small fixed sets (operation types, outcomes, failure kinds, Bot API
methods and reason codes); ids of users, channels or messages are never labels.
"""

from __future__ import annotations

import bisect
import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from ..consumer.hooks import ConsumerHooks
from ..operations import OPERATION_TYPES, AnyOperation
from ..service import Outcome
from ..transports.base import ReceivedMessage

if TYPE_CHECKING:
    from ..service import FloodCounters

UNKNOWN_OPERATION = "unknown"
"""The operation label of an undecodable message."""
OUTCOMES = ("succeeded", "noop", "retried", "failed", "dead_lettered")
"""Outcome label values of the duration histogram; failed = permanent failure."""
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Attempts that never reach a settling hook (a worker-stopping error, an internal bug) would
# otherwise leave their start times behind for ever.
_MAX_STARTED = 10_000


class Metrics:
    """Every botqueue metric, on a registry of its own (several workers can share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.visible = Gauge(
            "botqueue_queue_visible_messages", "Messages waiting on the main queue.", registry=r
        )
        self.queue_in_flight = Gauge(
            "botqueue_queue_in_flight_messages",
            "Messages received from the main queue and not yet settled, by any worker.",
            registry=r,
        )
        self.oldest_age = Gauge(
            "botqueue_queue_oldest_message_age_seconds",
            "Age of the oldest message on the main queue.",
            registry=r,
        )
        self.dlq_depth = Gauge("botqueue_dlq_messages", "Messages on the DLQ.", registry=r)
        self.stats_updated = Gauge(
            "botqueue_queue_stats_updated_timestamp_seconds",
            "When the queue gauges were last refreshed (Unix time).",
            registry=r,
        )
        self.stats_errors = Counter(
            "botqueue_queue_stats_errors", "Failed refreshes of the queue gauges.", registry=r
        )
        self.sent = Counter(
            "botqueue_messages_sent",
            "Messages sent by this process, by queue (main, dlq, outcomes).",
            ["queue"],
            registry=r,
        )
        self.received = Counter(
            "botqueue_messages_received", "Messages received from the main queue.", registry=r
        )
        self.deleted = Counter(
            "botqueue_messages_deleted",
            "Messages deleted from the main queue: done, dropped, or moved to the DLQ.",
            registry=r,
        )
        self.duration = DurationHistogram()
        r.register(self.duration)
        self.retries = Counter(
            "botqueue_retries", "Failed attempts scheduled for a retry.", ["operation"], registry=r
        )
        self.dead_letters = Counter(
            "botqueue_dead_letters",
            "Messages written to the DLQ, by kind (exhausted, permanent, undecodable).",
            ["operation", "kind"],
            registry=r,
        )
        self.worker_in_flight = Gauge(
            "botqueue_worker_in_flight_messages",
            "Messages this worker holds: received and not yet settled or handed back.",
            registry=r,
        )
        self.telegram_requests = Counter(
            "botqueue_telegram_requests",
            "Bot API calls by method and status (ok or the error's reason code).",
            ["method", "status"],
            registry=r,
        )
        self.telegram_duration = Histogram(
            "botqueue_telegram_request_duration_seconds",
            "Bot API call time by method.",
            ["method"],
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.outcome_hook_errors = Counter(
            "botqueue_outcome_hook_errors", "Outcome hook calls that raised.", registry=r
        )
        ProcessCollector(registry=r)
        for op in OPERATION_TYPES:
            self.retries.labels(op)
        for queue in ("dlq", "outcomes"):
            self.sent.labels(queue)

    def observe_duration(self, operation: str, outcome: str, seconds: float) -> None:
        """Record the time of one attempt."""
        self.duration.observe(operation, outcome, seconds)

    def observe_request(self, method: str, status: str, seconds: float) -> None:
        """A TelegramBotService request observer: count and time one Bot API call."""
        self.telegram_requests.labels(method, status).inc()
        self.telegram_duration.labels(method).observe(seconds)

    def track_in_flight(self, held: Callable[[], int]) -> None:
        """Read this worker's held-message count at each scrape."""
        self.worker_in_flight.set_function(lambda: float(held()))

    def track_flood(self, stats: FloodCounters) -> None:
        """Expose a Telegram limiter's 429 counters (read at each scrape)."""
        self.registry.register(FloodCollector(stats))


class DurationHistogram(Collector):
    """``botqueue_operation_duration_seconds``: observed once per attempt, on the event loop.

    prometheus-client's Histogram takes two locks per observation, which cost more than
    everything else the metrics do per operation; observations here come from one thread
    (the worker's event loop) and need none. A scrape (on the server's thread) copies the
    counts; at worst it sees one observation's count without its sum, which rates over a
    scrape interval cannot tell.
    """

    def __init__(self, buckets: tuple[float, ...] = DURATION_BUCKETS) -> None:
        self.bounds = buckets
        self._series: dict[tuple[str, str], list[float]] = {}
        for op in OPERATION_TYPES:
            for outcome in OUTCOMES:
                self._new(op, outcome)

    def _new(self, operation: str, outcome: str) -> list[float]:
        # Counts per bucket (the last is +Inf), then the sum.
        series = self._series[(operation, outcome)] = [0.0] * (len(self.bounds) + 2)
        return series

    def observe(self, operation: str, outcome: str, seconds: float) -> None:
        """Count one attempt of ``seconds``."""
        series = self._series.get((operation, outcome)) or self._new(operation, outcome)
        series[bisect.bisect_left(self.bounds, seconds)] += 1
        series[-1] += seconds

    def collect(self) -> Iterator[Metric]:
        """The histogram with cumulative buckets, as it is now."""
        family = HistogramMetricFamily(
            "botqueue_operation_duration_seconds",
            "Time to perform one attempt of an operation, by type and outcome.",
            labels=["operation", "outcome"],
        )
        for (operation, outcome), series in list(self._series.items()):
            counts = series[:]
            cumulative = list(itertools.accumulate(counts[:-1]))
            # repr() of these bounds is what Prometheus' own client writes (0.005, 1.0, 60.0).
            buckets = [(repr(bound), cumulative[i]) for i, bound in enumerate(self.bounds)]
            buckets.append(("+Inf", cumulative[-1]))
            family.add_metric([operation, outcome], buckets, counts[-1])
        yield family


class FloodCollector(Collector):
    """429 answers, seconds paused and messages handed back, read from a FloodCounters."""

    def __init__(self, stats: FloodCounters) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        """The three counters, as they are now."""
        yield CounterMetricFamily(
            "botqueue_telegram_rate_limited",
            "429 Too Many Requests answers from the Bot API.",
            value=self.stats.rate_limited,
        )
        yield CounterMetricFamily(
            "botqueue_telegram_paused_seconds",
            "Seconds every call of the bot was paused by flood control.",
            value=self.stats.paused_seconds,
        )
        yield CounterMetricFamily(
            "botqueue_telegram_handed_back",
            "Calls that met a flood pause longer than the hold; their operations then wait for"
            " the bot-wide pause.",
            value=self.stats.handed_back,
        )
        # The shared flood budget (only when one is configured): 0 means this worker runs on
        # its fallback share because the store is unreachable.
        shared = self.stats.budget_shared
        if shared is not None:
            from prometheus_client.core import GaugeMetricFamily

            yield GaugeMetricFamily(
                "botqueue_flood_budget_shared",
                "1 while the token's flood budget is shared with the other workers, 0 while this"
                " worker is on its fallback share.",
                value=float(shared),
            )


class MetricsHooks(ConsumerHooks):
    """Consumer hooks that count messages and time attempts into a Metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._started: dict[str, float] = {}

    def _elapsed(self, message: ReceivedMessage) -> float | None:
        started = self._started.pop(message.receipt, None)
        return None if started is None else time.monotonic() - started

    def on_received(self, messages: Sequence[ReceivedMessage]) -> None:
        """Count received messages."""
        self.metrics.received.inc(len(messages))

    def on_deleted(self, count: int) -> None:
        """Count deleted messages."""
        self.metrics.deleted.inc(count)

    def on_started(self, op: AnyOperation, message: ReceivedMessage) -> None:
        """Note when the attempt started."""
        if len(self._started) >= _MAX_STARTED:
            self._started.pop(next(iter(self._started)))
        self._started[message.receipt] = time.monotonic()

    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        """Time the attempt as succeeded or noop."""
        self._started.pop(message.receipt, None)
        self.metrics.observe_duration(op.operation_type, outcome.status, seconds)

    def on_retry(
        self, op: AnyOperation, message: ReceivedMessage, error: BaseException, delay: float
    ) -> None:
        """Count the retry and time the attempt."""
        self.metrics.retries.labels(op.operation_type).inc()
        seconds = self._elapsed(message)
        if seconds is not None:
            self.metrics.observe_duration(op.operation_type, "retried", seconds)

    def on_dead_letter(
        self, op: AnyOperation | None, message: ReceivedMessage, failure: Mapping[str, Any]
    ) -> None:
        """Count the dead letter by kind and time the attempt."""
        operation = op.operation_type if op is not None else UNKNOWN_OPERATION
        kind = str(failure.get("kind", "unknown"))
        self.metrics.dead_letters.labels(operation, kind).inc()
        self.metrics.sent.labels("dlq").inc()
        # The transport moved it: written to the DLQ and deleted from the main queue.
        self.metrics.deleted.inc()
        seconds = self._elapsed(message)
        if seconds is not None:
            outcome = "failed" if kind == "permanent" else "dead_lettered"
            self.metrics.observe_duration(operation, outcome, seconds)

    def on_dropped(self, op: AnyOperation, message: ReceivedMessage, error: BaseException) -> None:
        """Time the attempt as failed (the message is deleted without a dead letter)."""
        seconds = self._elapsed(message)
        if seconds is not None:
            self.metrics.observe_duration(op.operation_type, "failed", seconds)
