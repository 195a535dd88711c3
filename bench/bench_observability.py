"""The cost of metrics and logs: one worker draining the embedded queue with a no-op service,
with metrics and JSON logs on, then with both off, interleaved in one process.

    .venv/bin/python bench/bench_observability.py [-n 20000] [--reps 5] [--concurrency 10]
                                                 [--log-to file|devnull] [--service-seconds S]
                                                 [--json]

"on" is what a production worker runs: a JSON line per operation (info) through the token
redactor, MetricsHooks, the queue gauges, the health heartbeat and the /metrics server, scraped
once a second by another process (Prometheus usually scrapes every 15 s). "off" is
log_operations=False, level warning, no hooks and no server. Runs alternate off/on on copies
of one pre-filled queue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

from _common import CountingService

from botqueue import (
    AnyOperation,
    BotQueueConsumer,
    BotQueueProducer,
    InviteUser,
    RemoveUser,
    VerifyPermissions,
)
from botqueue.logs import configure_logging
from botqueue.observability import (
    HealthState,
    Metrics,
    MetricsHooks,
    ObservabilityServer,
    QueueGauges,
)
from botqueue.transports import SqliteTransport

TARGET_RATIO = 0.90
"""The rate with metrics and logs on must be at least this share of the rate with both off."""
TOKEN = "123456789:AAbenchmarkTokenbenchmarkToken0000"


@dataclass
class Run:
    """One drain: with observability on or off, operations, seconds, log lines written."""

    mode: str
    operations: int
    seconds: float
    cpu_seconds: float
    scrapes: int

    @property
    def rate(self) -> float:
        """Operations per second."""
        return self.operations / self.seconds

    @property
    def cpu_per_op(self) -> float:
        """Process CPU time (every thread) per operation, in microseconds."""
        return self.cpu_seconds / self.operations * 1e6


def operations(count: int, groups: int = 1000) -> list[AnyOperation]:
    """Invites and removals over ``groups`` (channel, user) groups, a check in a hundred."""
    ops: list[AnyOperation] = []
    for i in range(count):
        channel, user = str(-1001000000000 - i % 50), 100_000 + i % groups
        if i % 100 == 99:
            ops.append(VerifyPermissions(channel_id=channel, listing_id=f"listing-{i}"))
        elif (i // groups) % 2 == 0:
            ops.append(
                InviteUser(channel_id=channel, user_id=user, subscription_id=f"s{i}", order_id="o")
            )
        else:
            ops.append(
                RemoveUser(
                    channel_id=channel, user_id=user, subscription_id=f"s{i}", reason="expiry"
                )
            )
    return ops


_SCRAPER = """
import sys, time, urllib.request
url, every = sys.argv[1], float(sys.argv[2])
while True:
    time.sleep(every)
    with urllib.request.urlopen(url, timeout=5) as response:
        response.read()
    print(1, flush=True)
"""


@contextlib.contextmanager
def scraping(url: str, every: float) -> Iterator[list[int]]:
    """Scrape ``url`` every ``every`` seconds from another process, as Prometheus would (a
    scraper thread in the worker's process would bill the client's work to the worker)."""
    count = [0]
    scraper = subprocess.Popen(
        [sys.executable, "-c", _SCRAPER, url, str(every)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield count
    finally:
        scraper.terminate()
        output, _ = scraper.communicate(timeout=10)
        count[0] = output.count("1")


async def drain(path: Path, expected: int, args: argparse.Namespace, on: bool, log: TextIO) -> Run:
    """Drain one copy of the queue with observability on or off."""
    service = CountingService(args.service_seconds)
    concurrency = args.concurrency
    configure_logging("info" if on else "warning", stream=log, json=True, token=TOKEN)
    async with SqliteTransport(f"sqlite:///{path}") as transport:
        metrics = Metrics()
        consumer = BotQueueConsumer(
            service,
            transport,
            concurrency=concurrency,
            drain=True,
            wait_time_seconds=1,
            log_operations=on,
            hooks=[MetricsHooks(metrics)] if on else [],
        )
        health = HealthState()
        server = ObservabilityServer(health, metrics.registry, port=0)
        gauges = QueueGauges(metrics, transport)
        if on:
            health.start()
            health.attach(consumer, transport)
            metrics.track_in_flight(lambda: consumer.held)
            server.start()
            gauges.start()
        with scraping(f"{server.url}/metrics", 1.0) if on else contextlib.nullcontext([0]) as n:
            start, cpu = time.perf_counter(), time.process_time()
            await consumer.run()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        if on:
            await gauges.aclose()
            await health.aclose()
            server.stop()
    assert service.calls == expected, (service.calls, expected)
    return Run("on" if on else "off", service.calls, seconds, cpu, n[0])


async def fill(path: Path, count: int) -> None:
    """Enqueue ``count`` operations into a new queue file."""
    async with SqliteTransport(f"sqlite:///{path}") as transport:
        await BotQueueProducer(transport).enqueue_many(operations(count))


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    """Fill a template once, then alternate off and on runs on copies of it."""
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-obs-") as tmp:
        template = Path(tmp) / "template.db"
        configure_logging("warning", stream=sys.stderr)
        await fill(template, args.operations)
        log_path = Path(tmp) / "worker.log" if args.log_to == "file" else Path("/dev/null")
        with open(log_path, "a") as log:  # noqa: ASYNC230 (once, before anything is timed)
            for rep in range(args.reps):
                # off-on, on-off, ...: neither mode always runs first (warm caches, drift).
                for on in (False, True) if rep % 2 == 0 else (True, False):
                    copy = Path(tmp) / f"run-{rep}-{on}.db"
                    shutil.copyfile(template, copy)
                    run = await drain(copy, args.operations, args, on, log)
                    runs.append(run)
                    for leftover in copy.parent.glob(f"{copy.name}*"):
                        leftover.unlink()
                    print(
                        f"rep {rep + 1}/{args.reps} {run.mode:<3} {run.rate:,.0f} ops/s "
                        f"({run.seconds:.2f} s, {run.cpu_per_op:.0f} us CPU/op, "
                        f"{run.scrapes} scrapes)",
                        file=sys.stderr,
                        flush=True,
                    )
        log_bytes = log_path.stat().st_size if args.log_to == "file" else None
    configure_logging("warning", stream=sys.stderr)
    off = [r.rate for r in runs if r.mode == "off"]
    on_ = [r.rate for r in runs if r.mode == "on"]
    pairs = [b / a for a, b in zip(off, on_, strict=True)]
    cpu_off = statistics.median(r.cpu_per_op for r in runs if r.mode == "off")
    cpu_on = statistics.median(r.cpu_per_op for r in runs if r.mode == "on")
    return {
        "benchmark": "observability",
        "operations": args.operations,
        "concurrency": args.concurrency,
        "reps": args.reps,
        "log_to": args.log_to,
        "service_seconds": args.service_seconds,
        "log_bytes": log_bytes,
        "median_off": statistics.median(off),
        "median_on": statistics.median(on_),
        "ratio": statistics.median(on_) / statistics.median(off),
        "pair_ratios": pairs,
        "cpu_us_per_op_off": cpu_off,
        "cpu_us_per_op_on": cpu_on,
        "target_ratio": TARGET_RATIO,
        "runs": [asdict(r) for r in runs],
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--operations", type=int, default=20_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--log-to", choices=["file", "devnull"], default="file")
    parser.add_argument(
        "--service-seconds",
        type=float,
        default=0.0,
        help="time each service call takes (0: none; the Bot API takes 0.05-0.3 s)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the medians and their ratio."""
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return 0
    ratio = float(result["ratio"])  # type: ignore[arg-type]
    print(
        f"\n{args.operations:,} operations, concurrency {args.concurrency}, "
        f"service call {args.service_seconds * 1000:g} ms, "
        f"median of {args.reps} interleaved reps, JSON logs to {args.log_to}"
    )
    print("| metrics + JSON logs | operations/s | CPU per operation (us) |")
    print("|---|---:|---:|")
    print(f"| off | {result['median_off']:,.0f} | {result['cpu_us_per_op_off']:.0f} |")
    print(f"| on | {result['median_on']:,.0f} | {result['cpu_us_per_op_on']:.0f} |")
    pairs = ", ".join(f"{p:.3f}" for p in result["pair_ratios"])  # type: ignore[attr-defined]
    print(
        f"on/off = {ratio:.3f} (pairs: {pairs}); target >= {TARGET_RATIO:.2f}: "
        f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
