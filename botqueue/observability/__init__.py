"""Metrics, health endpoints and outcome events of a worker (logging lives in botqueue.logs)."""

from .gauges import MeteredTransport, QueueGauges
from .health import HealthState
from .metrics import Metrics, MetricsHooks
from .outcome_sinks import OutcomeHookRunner, OutcomePublisher, load_outcome_hook
from .outcomes import OutcomeEvent, OutcomeHooks, build_event
from .server import ObservabilityServer

__all__ = [
    "HealthState",
    "MeteredTransport",
    "Metrics",
    "MetricsHooks",
    "ObservabilityServer",
    "OutcomeEvent",
    "OutcomeHookRunner",
    "OutcomeHooks",
    "OutcomePublisher",
    "QueueGauges",
    "build_event",
    "load_outcome_hook",
]
