"""What a shared flood budget costs per call: acquire + release of one grant, uncontended.

    .venv/bin/python bench/bench_budget.py [--grants 500] [--reps 2] [--pace-ms 15]

Times one grant after another in one process, for the per-process budget (an in-memory store),
the SQLite file and a Redis server (started here on a free port, if redis-server or
valkey-server is on PATH), and prints the median and 99th percentile of each and the median's
excess over the local budget. The budget's rate is 100/s and grants are paced 15 ms apart, so
that no grant waits for the window (only the budget's own work is timed) and the store holds
what it holds in use (a second's worth of cool-downs). ``--pace-ms 0`` times them back to
back instead, at a rate of 10^6/s (the SQLite file then holds ~1,500 cool-downs, more than
any real window).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _flood_workers import redis_server

from botqueue.telegram.flood import FloodBudget, open_budget

TOKEN = "123456789:AAE-bench-budget-token-0000000"
PACED_RATE, BACK_TO_BACK_RATE = 100.0, 1e6


async def time_grants(budget: FloodBudget, grants: int, pace: float) -> list[float]:
    """Seconds of each acquire + release, after a warm-up (connections, scripts, thread)."""
    seconds: list[float] = []
    for n in range(grants + 20):
        started = time.perf_counter()
        grant = await budget.acquire()
        assert grant is not None
        now = time.monotonic()
        await budget.release(grant, now, now)
        if n >= 20:
            seconds.append(time.perf_counter() - started)
        if pace:
            await asyncio.sleep(pace)
    await budget.aclose()
    return seconds


async def main_async(
    grants: int, reps: int, pace: float, redis_url: str | None, folder: str
) -> None:
    """Time every budget ``reps`` times, interleaved, and print the table."""
    urls = {"local": "local", "sqlite": f"sqlite:///{folder}/flood.db"}
    if redis_url:
        urls["redis"] = redis_url
    runs: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(reps):
        for name, url in urls.items():
            budget = open_budget(PACED_RATE if pace else BACK_TO_BACK_RATE, token=TOKEN, url=url)
            runs[name] += await time_grants(budget, grants, pace)
    local = statistics.median(runs["local"])
    print("| budget | median µs | p99 µs | extra per grant, µs (median) |")
    print("|---|---:|---:|---:|")
    for name, seconds in runs.items():
        median, p99 = statistics.median(seconds), statistics.quantiles(seconds, n=100)[98]
        print(f"| {name} | {median * 1e6:.0f} | {p99 * 1e6:.0f} | {(median - local) * 1e6:.0f} |")


def main(argv: list[str] | None = None) -> int:
    """Parse options, start Redis when there is one, time the budgets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=500, help="per budget and repetition")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--pace-ms", type=float, default=15.0, help="between grants; 0: none")
    args = parser.parse_args(argv)
    pace = args.pace_ms / 1000
    with tempfile.TemporaryDirectory(prefix="bench-budget-") as folder:
        try:
            with redis_server(Path(folder)) as url:
                asyncio.run(main_async(args.grants, args.reps, pace, url, folder))
        except RuntimeError as error:
            print(f"NOTE: {error}; Redis skipped", file=sys.stderr)
            asyncio.run(main_async(args.grants, args.reps, pace, None, folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
