"""One worker end to end: BotQueueConsumer draining a pre-filled embedded queue, no-op service.

    .venv/bin/python bench/bench_worker.py [-n 20000] [--groups 1000] [--reps 5]
                                           [--concurrency 10,50] [--json]

The queue is filled once through BotQueueProducer.enqueue_many; every run works on its own
copy of that file, and the concurrency variants run side by side inside each repetition.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

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
from botqueue.transports import SqliteTransport

TARGET_OPS = 2000.0
"""Operations/s one worker should reach with a no-op service."""
CHANNELS = 50


@dataclass
class Run:
    """One consumer run: concurrency, operations, seconds, and the drain tail in seconds."""

    concurrency: int
    operations: int
    seconds: float
    tail: float  # from the last service call to run() returning: the cost of ending a drain

    @property
    def rate(self) -> float:
        """Operations per second, over the whole of run()."""
        return self.operations / self.seconds

    @property
    def steady(self) -> float:
        """Operations per second up to the last operation (without the drain tail)."""
        return self.operations / (self.seconds - self.tail)


def make_operations(count: int, groups: int) -> list[AnyOperation]:
    """Invites and removals round robin over ``groups`` groups, 1% permission checks."""
    ops: list[AnyOperation] = []
    for i in range(count):
        group = i % groups
        channel = str(-1001000000000 - group % CHANNELS)
        user = 100_000 + group
        if i % 100 == 99:
            ops.append(VerifyPermissions(channel_id=channel, listing_id=f"listing-{i}"))
        elif (i // groups) % 2 == 0:
            ops.append(
                InviteUser(
                    channel_id=channel, user_id=user, subscription_id=f"sub-{i}", order_id=f"o-{i}"
                )
            )
        else:
            ops.append(
                RemoveUser(
                    channel_id=channel, user_id=user, subscription_id=f"sub-{i}", reason="expiry"
                )
            )
    return ops


async def fill(path: Path, ops: list[AnyOperation]) -> float:
    """Enqueue ``ops`` into a new queue file; return the enqueue rate (operations/s)."""
    async with SqliteTransport(f"sqlite:///{path}") as transport:
        producer = BotQueueProducer(transport)
        start = time.perf_counter()
        await producer.enqueue_many(ops)
        seconds = time.perf_counter() - start
        stats = await transport.stats()
        assert stats.visible == len(ops), stats
    return len(ops) / seconds


async def consume(path: Path, expected: int, concurrency: int) -> Run:
    """Drain the queue file with one consumer; check everything was processed exactly once."""
    service = CountingService()
    async with SqliteTransport(f"sqlite:///{path}") as transport:
        consumer = BotQueueConsumer(
            service,
            transport,
            concurrency=concurrency,
            drain=True,
            log_operations=False,
            wait_time_seconds=1,
        )
        start = time.perf_counter()
        await consumer.run()
        end = time.perf_counter()
        stats = await transport.stats()
    assert service.calls == expected, (service.calls, expected)
    assert stats.visible == 0 and stats.in_flight == 0 and stats.dead_letters == 0, stats
    return Run(concurrency, service.calls, end - start, end - service.last_call)


def copy_queue(template: Path, copy: Path) -> Path:
    """Copy the filled queue file (closed, so fully checkpointed) to a fresh path."""
    shutil.copyfile(template, copy)
    return copy


def remove_queue(path: Path) -> None:
    """Delete a queue file and its WAL and shared-memory files."""
    for leftover in path.parent.glob(f"{path.name}*"):
        leftover.unlink()


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    """Fill a template queue once, then time every run on a copy of it."""
    levels = [int(c) for c in args.concurrency.split(",") if c]
    runs: dict[int, list[Run]] = {c: [] for c in levels}
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        template = Path(tmp) / "template.db"
        enqueue_rate = await fill(template, make_operations(args.operations, args.groups))
        print(f"filled {args.operations:,} operations at {enqueue_rate:,.0f}/s", file=sys.stderr)
        for rep in range(args.reps):
            for concurrency in levels:
                copy = copy_queue(template, Path(tmp) / f"run-{rep}-{concurrency}.db")
                run = await consume(copy, args.operations, concurrency)
                remove_queue(copy)
                runs[concurrency].append(run)
                print(
                    f"rep {rep + 1}/{args.reps} concurrency={concurrency:<3} "
                    f"{run.seconds:.2f}s {run.rate:,.0f} ops/s (tail {run.tail:.2f}s)",
                    file=sys.stderr,
                    flush=True,
                )
    return {
        "benchmark": "worker",
        "operations": args.operations,
        "groups": args.groups,
        "reps": args.reps,
        "target_ops": TARGET_OPS,
        "enqueue_rate": enqueue_rate,
        "median": {str(c): statistics.median(r.rate for r in rs) for c, rs in runs.items()},
        "median_steady": {
            str(c): statistics.median(r.steady for r in rs) for c, rs in runs.items()
        },
        "median_tail": {str(c): statistics.median(r.tail for r in rs) for c, rs in runs.items()},
        "runs": {str(c): [asdict(r) for r in rs] for c, rs in runs.items()},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--operations", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--concurrency", default="10,50", help="comma-separated levels")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the medians."""
    args = parse_args(argv)
    # The producer logs every enqueue at info; keep the benchmark's output to its results.
    configure_logging("warning", stream=sys.stderr)
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return 0
    medians: dict[str, float] = result["median"]  # type: ignore[assignment]
    print(f"\n{args.operations:,} operations, {args.groups:,} groups, median of {args.reps} reps")
    print(f"enqueue_many: {result['enqueue_rate']:,.0f} operations/s (one fill)")
    tails: dict[str, float] = result["median_tail"]  # type: ignore[assignment]
    steady: dict[str, float] = result["median_steady"]  # type: ignore[assignment]
    print("| concurrency | operations/s | without the drain tail | drain tail (s) |")
    print("|---:|---:|---:|---:|")
    for c, rate in medians.items():
        print(f"| {c} | {rate:,.0f} | {steady[c]:,.0f} | {tails[c]:.2f} |")
    best = medians.get("10", max(medians.values()))
    print(
        f"target >= {TARGET_OPS:,.0f} ops/s (concurrency 10): "
        f"{'met' if best >= TARGET_OPS else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
