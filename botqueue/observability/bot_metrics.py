"""Metrics of the bot as a whole: whether it can call Telegram now, and time spent paused."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ..service import BotState

REASONS = ("flood", "telegram_unavailable")


class BotStateCollector(Collector):
    """``botqueue_bot_available``, ``botqueue_bot_paused{reason}`` and
    ``botqueue_bot_paused_seconds_total{reason}``, read from the bot state at each scrape."""

    def __init__(
        self, state: BotState, paused_seconds: Callable[[], Mapping[str, float]] | None
    ) -> None:
        self.state = state
        self.paused_seconds = paused_seconds

    def collect(self) -> Iterator[Metric]:
        """Availability (1 or 0), the current pause by reason (1 or 0 each), the counters."""
        pause = self.state.unavailable()
        yield GaugeMetricFamily(
            "botqueue_bot_available",
            "1 while the bot can call Telegram; 0 while flood control or an outage pauses it.",
            value=0.0 if pause else 1.0,
        )
        current = GaugeMetricFamily(
            "botqueue_bot_paused",
            "1 for the reason the bot is paused now (flood, telegram_unavailable), else 0.",
            labels=["reason"],
        )
        paused = CounterMetricFamily(
            "botqueue_bot_paused_seconds",
            "Seconds the bot spent paused, by reason (flood control, Telegram unavailable).",
            labels=["reason"],
        )
        spent = self.paused_seconds() if self.paused_seconds is not None else {}
        for reason in REASONS:
            current.add_metric([reason], 1.0 if pause and pause.reason == reason else 0.0)
            paused.add_metric([reason], float(spent.get(reason, 0.0)))
        yield current
        yield paused
