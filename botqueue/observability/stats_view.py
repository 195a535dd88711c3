"""``botqueue stats --watch``: a live table of the queue's figures and the workers' counters.

Queue figures come from the transport (every interval); worker figures, when ``--metrics-url``
names one or more workers, from their /metrics, summed, with rates between refreshes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..config import load_settings
from ..transports import open_transport
from ..transports.base import QueueStats, Transport

WORKER_FIGURES = (
    ("botqueue_messages_received_total", "received"),
    ("botqueue_messages_deleted_total", "deleted"),
    ("botqueue_retries_total", "retries"),
    ("botqueue_dead_letters_total", "dead letters"),
    ("botqueue_telegram_requests_total", "Telegram requests"),
    ("botqueue_telegram_rate_limited_total", "Telegram 429s"),
    ("botqueue_telegram_paused_seconds_total", "seconds paused (429)"),
    ("botqueue_worker_in_flight_messages", "in flight (workers)"),
)
"""(sample name, label) of the worker figures shown; counters get a rate column."""


def parse_metrics(text: str) -> dict[str, float]:
    """Sum every sample of a Prometheus text exposition by sample name (labels folded)."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    return sums


async def scrape(session: aiohttp.ClientSession, urls: Sequence[str]) -> dict[str, float]:
    """Scrape every URL and add the figures up (a URL that fails is left out)."""
    total: dict[str, float] = {}
    for url in urls:
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                figures = parse_metrics(await response.text())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            continue
        for name, value in figures.items():
            total[name] = total.get(name, 0.0) + value
    return total


@dataclass
class Snapshot:
    """Figures at one moment: the queue's, the outcomes queue's and the workers' counters."""

    at: float
    queue: QueueStats | None
    outcomes: QueueStats | None = None
    workers: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def render(now: Snapshot, before: Snapshot | None, title: str = "botqueue") -> Table:
    """The table for one refresh; rates are per second since ``before``."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("per second", justify="right")
    if now.queue is not None:
        table.add_row("queue depth (visible)", f"{now.queue.visible:,}", "")
        table.add_row("in flight (queue)", f"{now.queue.in_flight:,}", "")
        table.add_row("oldest message age", f"{now.queue.oldest_age_seconds:,.1f} s", "")
        table.add_row("DLQ depth", f"{now.queue.dead_letters:,}", "")
    if now.outcomes is not None:
        table.add_row("outcome events waiting", f"{now.outcomes.visible:,}", "")
    elapsed = now.at - before.at if before is not None else 0.0
    for name, label in WORKER_FIGURES:
        if name not in now.workers:
            continue
        value = now.workers[name]
        rate = ""
        if name.endswith("_total") and before is not None and elapsed > 0:
            rate = f"{(value - before.workers.get(name, value)) / elapsed:,.1f}"
        table.add_row(label, f"{value:,.0f}", rate)
    if now.error:
        table.add_row("[red]error[/red]", now.error, "")
    return table


async def take(
    transport: Transport,
    outcomes: Transport | None,
    session: aiohttp.ClientSession,
    metrics_urls: Sequence[str],
) -> Snapshot:
    """Read every figure once."""
    snapshot = Snapshot(at=time.monotonic(), queue=None)
    try:
        snapshot.queue = await transport.stats()
        if outcomes is not None:
            snapshot.outcomes = await outcomes.stats()
    except Exception as error:  # shown in the table; the next refresh tries again
        snapshot.error = f"{type(error).__name__}: {error}"
    if metrics_urls:
        snapshot.workers = await scrape(session, metrics_urls)
        if not snapshot.workers:
            snapshot.error = "no worker answered at --metrics-url"
    return snapshot


async def watch(
    transport: Transport,
    outcomes: Transport | None,
    metrics_urls: Sequence[str],
    *,
    interval: float = 2.0,
    console: Console | None = None,
    refreshes: int | None = None,
) -> None:
    """Refresh a live table every ``interval`` seconds until interrupted (or ``refreshes``)."""
    before: Snapshot | None = None
    count = 0
    console = console or Console()
    try:
        async with aiohttp.ClientSession() as session:
            with Live(console=console, auto_refresh=False) as live:
                while refreshes is None or count < refreshes:
                    now = await take(transport, outcomes, session, metrics_urls)
                    live.update(render(now, before, _title(interval)), refresh=True)
                    before, count = now, count + 1
                    if refreshes is None or count < refreshes:
                        await asyncio.sleep(interval)
    finally:
        if not console.is_terminal:
            console.line()  # off a terminal Live prints the last table only, unterminated


def worker_summary(figures: Mapping[str, float]) -> dict[str, float]:
    """The worker figures of a scrape, by their short names (for --json)."""
    return {label: figures[name] for name, label in WORKER_FIGURES if name in figures}


async def scrape_summary(urls: Sequence[str]) -> dict[str, float]:
    """Scrape the workers once and return their figures by short name (``stats --json``)."""
    async with aiohttp.ClientSession() as session:
        return worker_summary(await scrape(session, urls))


def outcomes_transport(url: str | None) -> Transport | None:
    """The outcomes queue to show in ``stats``, if one is configured (not yet connected).

    Raises:
        ConfigurationError: a setting is malformed, or the URL names the main queue or the DLQ.
    """
    if not url:
        return None
    from .setup import outcomes_url  # the worker's wiring: consumer, metrics server

    return open_transport(outcomes_url(url, load_settings()))


def _title(interval: float) -> str:
    return f"botqueue stats (every {interval:g} s; Ctrl+C to stop)  {time.strftime('%H:%M:%S')}"
