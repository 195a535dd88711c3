"""Metrics, health endpoints and outcome events of a worker (logging lives in botqueue.logs).

The names below are imported on first use (PEP 562): the metrics server needs aiohttp and
prometheus_client, which ``botqueue health`` and the other light commands never load.
"""

import typing

from .._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
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

_ORIGIN = {
    "HealthState": "health",
    "MeteredTransport": "gauges",
    "Metrics": "metrics",
    "MetricsHooks": "metrics",
    "ObservabilityServer": "server",
    "OutcomeEvent": "outcomes",
    "OutcomeHookRunner": "outcome_sinks",
    "OutcomeHooks": "outcomes",
    "OutcomePublisher": "outcome_sinks",
    "QueueGauges": "gauges",
    "build_event": "outcomes",
    "load_outcome_hook": "outcome_sinks",
}


__getattr__, __dir__ = _lazy_exports(__name__, _ORIGIN, globals(), __all__)
