"""`botqueue stats --watch`: the live table's figures and rates, and the command itself."""

from __future__ import annotations

import asyncio
import io
import json
import signal
import sys
from pathlib import Path

from rich.console import Console

from botqueue.observability import HealthState, Metrics, ObservabilityServer
from botqueue.observability.stats_view import Snapshot, parse_metrics, render, watch
from botqueue.transports import QueueStats, SqliteTransport
from tests.obs_run import fill

ROOT = Path(__file__).resolve().parents[2]


def text_of(table: object) -> str:
    """A rich renderable as plain text."""
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def test_render_shows_queue_figures_and_worker_rates() -> None:
    before = Snapshot(at=10.0, queue=None, workers={"botqueue_messages_received_total": 100})
    now = Snapshot(
        at=12.0,
        queue=QueueStats(visible=1500, in_flight=7, dead_letters=2, oldest_age_seconds=61.25),
        outcomes=QueueStats(3, 0, 0, 0.0),
        workers={
            "botqueue_messages_received_total": 160,
            "botqueue_worker_in_flight_messages": 7,
        },
    )
    text = text_of(render(now, before))
    assert "queue depth (visible)" in text and "1,500" in text
    assert "61.2 s" in text and "DLQ depth" in text
    assert "outcome events waiting" in text
    row = next(line for line in text.splitlines() if "received" in line)
    assert "160" in row and "30.0" in row  # 60 more in 2 s
    assert "in flight (workers)" in text


def test_parse_metrics_sums_over_labels() -> None:
    metrics = Metrics()
    metrics.retries.labels("INVITE_USER").inc(2)
    metrics.retries.labels("REMOVE_USER").inc(3)
    from prometheus_client import generate_latest

    figures = parse_metrics(generate_latest(metrics.registry).decode())
    assert figures["botqueue_retries_total"] == 5


async def test_watch_refreshes_from_the_queue_and_the_workers(
    sqlite_transport: SqliteTransport,
) -> None:
    await fill(sqlite_transport)
    metrics = Metrics()
    metrics.received.inc(42)
    server = ObservabilityServer(HealthState(), metrics.registry, port=0)
    await asyncio.to_thread(server.start)
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None)
    await watch(
        sqlite_transport,
        None,
        [f"{server.url}/metrics"],
        interval=0.05,
        console=console,
        refreshes=3,
    )
    await asyncio.to_thread(server.stop)
    text = out.getvalue()
    assert "queue depth (visible)" in text and "7" in text
    assert "received" in text and "42" in text


async def test_the_command_runs_until_interrupted(db_url: str) -> None:
    async with SqliteTransport(db_url) as transport:
        await fill(transport)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botqueue",
        "stats",
        "--watch",
        "--interval",
        "0.2",
        "--queue-url",
        db_url,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(2.0)
    process.send_signal(signal.SIGINT)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert "queue depth (visible)" in out.decode() and "Traceback" not in err.decode()
    # The one-shot forms are unchanged.
    once = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botqueue", "stats", "--json", "--queue-url", db_url,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    figures = json.loads((await once.communicate())[0])
    assert figures["visible"] == 7
