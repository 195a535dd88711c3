"""Worker memory with a deep queue: peak RSS of a consumer process facing 100,000 waiting messages.

    .venv/bin/python bench/bench_memory.py [-n 100000] [--seconds 5] [--reps 3]
                                           [--concurrency 10,50] [--json]

One subprocess fills a queue file through BotQueueProducer.enqueue_many. Then, for every run, a
fresh Python subprocess opens a copy of that file, consumes with a slow no-op service for
``--seconds``, stops gracefully and reports its own peak RSS (getrusage ru_maxrss, KiB on
Linux), so only the worker process is measured, never the filler.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import CountingService

from botqueue import (
    BotQueueConsumer,
    BotQueueProducer,
    InviteUser,
    RemoveUser,
)
from botqueue.logs import configure_logging
from botqueue.transports import SqliteTransport

TARGET_MB = 80.0
"""Peak RSS, in MB (MiB), one worker should stay under with 100,000 messages waiting."""


def peak_rss_kib() -> int:
    """This process's peak resident set size in KiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def fill(path: Path, count: int) -> None:
    """Enqueue ``count`` invites and removals over 1,000 groups (filler only; not measured)."""
    # synchronous=normal only makes the fill faster; the worker reopens with the default, full.
    async with SqliteTransport(f"sqlite:///{path}?synchronous=normal") as transport:
        producer = BotQueueProducer(transport)
        for start in range(0, count, 10_000):
            ops: list[InviteUser | RemoveUser] = []
            for i in range(start, min(start + 10_000, count)):
                channel, user = str(-1001000000000 - i % 50), 100_000 + i % 1_000
                if (i // 1_000) % 2 == 0:
                    ops.append(
                        InviteUser(
                            channel_id=channel,
                            user_id=user,
                            subscription_id=f"sub-{i}",
                            order_id=f"o-{i}",
                        )
                    )
                else:
                    ops.append(
                        RemoveUser(
                            channel_id=channel,
                            user_id=user,
                            subscription_id=f"sub-{i}",
                            reason="expiry",
                        )
                    )
            await producer.enqueue_many(ops)
        stats = await transport.stats()
        assert stats.visible == count, stats


async def work(path: Path, seconds: float, concurrency: int, delay: float) -> dict[str, Any]:
    """Consume for ``seconds``, stop gracefully, and report peak RSS and progress."""
    imported_kib = peak_rss_kib()
    service = CountingService(delay)
    async with SqliteTransport(f"sqlite:///{path}") as transport:
        before = await transport.stats()
        consumer = BotQueueConsumer(
            service, transport, concurrency=concurrency, log_operations=False, wait_time_seconds=1
        )
        await consumer.start()
        await asyncio.sleep(seconds)
        await consumer.stop()
        after = await transport.stats()
    return {
        "peak_rss_kib": peak_rss_kib(),
        "after_import_kib": imported_kib,
        "waiting_at_start": before.visible,
        "processed": service.calls,
        "left": after.visible + after.in_flight,
    }


def child(args: argparse.Namespace) -> int:
    """Run the filler or the worker side, inside its own process."""
    configure_logging("warning", stream=sys.stderr)
    if args.role == "fill":
        asyncio.run(fill(args.db, args.messages))
        return 0
    report = asyncio.run(work(args.db, args.seconds, args.concurrency_one, args.delay))
    print(json.dumps(report))
    return 0


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    """Fill once in a subprocess, then run each worker in a fresh subprocess on a copy."""
    me = [sys.executable, str(Path(__file__).resolve())]
    levels = [int(c) for c in args.concurrency.split(",") if c]
    runs: dict[str, list[dict[str, Any]]] = {str(c): [] for c in levels}
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        template = Path(tmp) / "template.db"
        start = time.perf_counter()
        subprocess.run(
            [*me, "--role", "fill", "--db", str(template), "-n", str(args.messages)], check=True
        )
        print(f"filled {args.messages:,} in {time.perf_counter() - start:.1f}s", file=sys.stderr)
        for rep in range(args.reps):
            for concurrency in levels:
                copy = Path(tmp) / "run.db"
                shutil.copyfile(template, copy)
                out = subprocess.run(
                    [
                        *me,
                        "--role",
                        "work",
                        "--db",
                        str(copy),
                        "--seconds",
                        str(args.seconds),
                        "--concurrency-one",
                        str(concurrency),
                        "--delay",
                        str(args.delay),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                for leftover in Path(tmp).glob("run.db*"):
                    leftover.unlink()
                report = json.loads(out.stdout.strip().splitlines()[-1])
                assert report["waiting_at_start"] == args.messages, report
                runs[str(concurrency)].append(report)
                print(
                    f"rep {rep + 1}/{args.reps} concurrency={concurrency:<3} peak "
                    f"{report['peak_rss_kib'] / 1024:.1f} MB, processed {report['processed']:,}",
                    file=sys.stderr,
                    flush=True,
                )
    return {
        "benchmark": "memory",
        "messages": args.messages,
        "seconds": args.seconds,
        "delay": args.delay,
        "reps": args.reps,
        "target_mb": TARGET_MB,
        "median_peak_mb": {
            c: statistics.median(r["peak_rss_kib"] for r in rs) / 1024 for c, rs in runs.items()
        },
        "median_after_import_mb": {
            c: statistics.median(r["after_import_kib"] for r in rs) / 1024 for c, rs in runs.items()
        },
        "runs": runs,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (--role, --db and --concurrency-one are for the subprocesses)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each worker runs")
    parser.add_argument("--delay", type=float, default=0.01, help="service seconds per call")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", default="10,50", help="comma-separated levels")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--role", choices=("fill", "work"), help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency-one", type=int, default=10, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the medians."""
    args = parse_args(argv)
    if args.role:
        return child(args)
    result = orchestrate(args)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"\n{args.messages:,} messages waiting, {args.seconds:g}s per worker, "
        f"median of {args.reps} reps"
    )
    print("| concurrency | peak RSS (MB) | RSS after imports (MB) |")
    print("|---:|---:|---:|")
    for c, peak in result["median_peak_mb"].items():
        print(f"| {c} | {peak:.1f} | {result['median_after_import_mb'][c]:.1f} |")
    worst = max(result["median_peak_mb"].values())
    print(f"target <= {TARGET_MB:g} MB: {'met' if worst <= TARGET_MB else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
