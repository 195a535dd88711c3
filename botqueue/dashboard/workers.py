"""What the dashboard reads from workers' /metrics: counters for rates, and the bot's state.

The scrape and the sums are those of ``botqueue stats --watch``
(:mod:`botqueue.observability.stats_view`); the bot's state needs the ``reason`` label of
``botqueue_bot_paused``, which those sums fold away, so it is read here from the same text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from ..observability.stats_view import WORKER_FIGURES, parse_metrics

OPERATIONS = "botqueue_operation_duration_seconds_count"
"""Attempts performed, every type and outcome: the workers' operations per second."""
AVAILABLE = "botqueue_bot_available"
PAUSED = "botqueue_bot_paused"

RUNNING = "running"
FLOOD = "paused (flood control)"
UNAVAILABLE = "Telegram unavailable"
UNKNOWN = "unknown"


@dataclass
class Reading:
    """The workers' figures summed by sample name, and the paused reasons seen."""

    figures: dict[str, float] = field(default_factory=dict)
    paused: set[str] = field(default_factory=set)
    answered: int = 0


def _paused_reasons(text: str) -> set[str]:
    reasons: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == PAUSED and sample.value > 0:
                reasons.add(sample.labels.get("reason", ""))
    return reasons


async def read(session: aiohttp.ClientSession, urls: Sequence[str]) -> Reading:
    """Scrape every URL once; a worker that does not answer is left out."""
    reading = Reading()
    for url in urls:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                text = await response.text()
            figures = parse_metrics(text)
            reasons = _paused_reasons(text)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            continue
        reading.answered += 1
        reading.paused |= reasons
        for name, value in figures.items():
            reading.figures[name] = reading.figures.get(name, 0.0) + value
    return reading


def bot_state(reading: Reading) -> str:
    """running, paused (flood control), Telegram unavailable, or unknown (nobody answered,
    or workers too old to say)."""
    if "flood" in reading.paused:
        return FLOOD
    if "telegram_unavailable" in reading.paused:
        return UNAVAILABLE
    if reading.figures.get(AVAILABLE, 0.0) > 0:
        return RUNNING
    return UNKNOWN


def figures_table(
    now: Mapping[str, float], before: Mapping[str, float] | None, elapsed: float
) -> list[dict[str, object]]:
    """The worker figures of ``stats --watch``: label, value and (counters) rate per second."""
    rows: list[dict[str, object]] = []
    for name, label in WORKER_FIGURES:
        if name not in now:
            continue
        rate: float | None = None
        if name.endswith("_total") and before is not None and name in before and elapsed > 0:
            rate = round(max(0.0, now[name] - before[name]) / elapsed, 3)
        rows.append({"name": name, "label": label, "value": now[name], "rate": rate})
    return rows
