"""Embedded queue throughput: send, receive and delete in batches of 10 on SqliteTransport.

    .venv/bin/python bench/bench_transport.py [-n 20000] [--groups 1000] [--reps 5] [--json]

Each repetition uses a fresh temporary database per sqlite ``synchronous`` mode; the modes run
side by side inside each repetition, so their ratio is not skewed by a noisy neighbour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from botqueue.transports import OutgoingMessage, SqliteTransport

BATCH = 10
TARGET_CYCLE = 5000.0
"""Messages/s the full send + receive + delete cycle should reach."""


@dataclass
class Run:
    """Seconds spent in each phase of one repetition, and the message count."""

    messages: int
    send: float
    receive: float
    delete: float
    receives: int
    cpu: float  # process CPU seconds (both threads) for the cycle: steadier than wall time

    @property
    def total(self) -> float:
        """Seconds for the whole cycle."""
        return self.send + self.receive + self.delete

    def rates(self) -> dict[str, float]:
        """Messages per second for each phase and for the cycle."""
        return {
            "send": self.messages / self.send,
            "receive": self.messages / self.receive,
            "delete": self.messages / self.delete,
            "cycle": self.messages / self.total,
        }


def make_messages(count: int, groups: int) -> list[OutgoingMessage]:
    """Operation-sized bodies, round robin over ``groups`` groups, unique dedup ids."""
    messages = []
    for i in range(count):
        channel, user = -1001000000000 - i % groups, 1000 + i % groups
        body = json.dumps(
            {
                "operationType": "INVITE_USER",
                "channelId": str(channel),
                "userId": user,
                "subscriptionId": f"sub-{i:08d}",
                "orderId": f"order-{i:08d}",
                "timestamp": "2026-11-28T12:00:00.000Z",
                "attemptCount": 0,
                "maxRetries": 3,
            },
            separators=(",", ":"),
        )
        messages.append(OutgoingMessage(body, f"{channel}:{user}", f"dedup-{i:08d}"))
    return messages


async def run_once(url: str, messages: list[OutgoingMessage]) -> Run:
    """Send every message, then receive and delete them all; time each phase."""
    clock = time.perf_counter
    async with SqliteTransport(url) as transport:
        cpu_start = time.process_time()
        start = clock()
        for i in range(0, len(messages), BATCH):
            results = await transport.send_batch(messages[i : i + BATCH])
            assert all(r.message_id for r in results), results
        send = clock() - start
        receive = delete = 0.0
        got = receives = 0
        while got < len(messages):
            start = clock()
            batch = await transport.receive(BATCH, wait_seconds=0)
            middle = clock()
            failed = await transport.delete_batch([m.receipt for m in batch])
            receive += middle - start
            delete += clock() - middle
            assert not failed, failed
            if not batch:
                raise RuntimeError(f"queue ran dry after {got} of {len(messages)} messages")
            got += len(batch)
            receives += 1
        cpu = time.process_time() - cpu_start
        stats = await transport.stats()
        assert stats.visible == 0 and stats.in_flight == 0, stats
    return Run(len(messages), send, receive, delete, receives, cpu)


def summarise(runs: list[Run]) -> dict[str, float]:
    """Median messages/s of each phase over the runs, plus mean messages per receive."""
    rates = [run.rates() for run in runs]
    summary = {key: statistics.median(r[key] for r in rates) for key in rates[0]}
    summary["per_receive"] = statistics.mean(run.messages / run.receives for run in runs)
    summary["cpu_us_per_message"] = statistics.median(1e6 * r.cpu / r.messages for r in runs)
    return summary


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    """Run every repetition of every mode, side by side, and summarise."""
    modes = [m for m in args.modes.split(",") if m]
    messages = make_messages(args.messages, args.groups)
    runs: dict[str, list[Run]] = {mode: [] for mode in modes}
    for rep in range(args.reps):
        for mode in modes:
            with tempfile.TemporaryDirectory(prefix="bench-transport-") as tmp:
                url = f"sqlite:///{Path(tmp) / 'queue.db'}?synchronous={mode}"
                run = await run_once(url, messages)
            runs[mode].append(run)
            rates = run.rates()
            print(
                f"rep {rep + 1}/{args.reps} synchronous={mode:<6} "
                + " ".join(f"{k}={v:,.0f}/s" for k, v in rates.items()),
                file=sys.stderr,
                flush=True,
            )
    summaries = {mode: summarise(mode_runs) for mode, mode_runs in runs.items()}
    return {
        "benchmark": "transport",
        "messages": args.messages,
        "groups": args.groups,
        "reps": args.reps,
        "target_cycle": TARGET_CYCLE,
        "median": summaries,
        "runs": {mode: [asdict(r) for r in mode_runs] for mode, mode_runs in runs.items()},
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--messages", type=int, default=20_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--modes", default="auto,full,normal", help="synchronous modes (auto is the default)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the medians."""
    args = parse_args(argv)
    result = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(result))
        return 0
    medians: dict[str, dict[str, float]] = result["median"]  # type: ignore[assignment]
    print(f"\n{args.messages:,} messages, {args.groups:,} groups, median of {args.reps} reps")
    print("| synchronous | send/s | receive/s | delete/s | send+receive+delete/s | CPU µs/msg |")
    print("|---|---:|---:|---:|---:|---:|")
    for mode, m in medians.items():
        print(
            f"| {mode} | {m['send']:,.0f} | {m['receive']:,.0f} | {m['delete']:,.0f} "
            f"| {m['cycle']:,.0f} | {m['cpu_us_per_message']:.0f} |"
        )
    default = medians.get("auto", {}).get("cycle", 0.0)
    verdict = "met" if default >= TARGET_CYCLE else "MISSED"
    print(f"target >= {TARGET_CYCLE:,.0f}/s (synchronous=auto, the default): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
