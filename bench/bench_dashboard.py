"""The dashboard's two performance claims (issue 13): a page of 1,000 dead letters renders in
under 1 s on the embedded queue, and polling costs the queue one stats call per refresh
interval whatever the number of clients.

    .venv/bin/python bench/bench_dashboard.py [--letters 1000] [--reps 15]
        [--clients 1,10,50] [--refresh 0.5] [--intervals 6] [--json]

Render: an embedded queue in a temporary directory gets ``--letters`` dead letters (invite,
removal and verify bodies, four kinds, several reason codes, undelivered invite links) through
the worker's own path (send, receive, ``dead_letter``). A dashboard is served on a free loopback
port; each repetition times, side by side and in rotating order, the HTTP ``GET /dead-letters``
(listing, building the rows, rendering the template, sending it; checked: every letter is a
row), ``GET /dead-letters/{id}`` of one letter, and the two baselines: the bare
``transport.dlq_list()`` the page starts with, and ``json.dumps`` of the same letters (what a
JSON API would do instead of a template). An untimed round first warms the caches.

Polling: for each client count C, a fresh dashboard with ``--refresh`` seconds over a transport
wrapper that counts ``stats()`` calls; C clients then poll ``GET /api/overview`` back to back
(far harder than a browser tab's one request per interval) for ``--intervals`` intervals.
Reported: stats calls, intervals elapsed, calls per interval, and the requests served.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from botqueue.dashboard import create_app
from botqueue.transports import OutgoingMessage, SqliteTransport, Transport
from botqueue.transports.base import QueueStats

KINDS = [
    ("permanent", "bot_blocked"),
    ("exhausted", "timeout"),
    ("permanent", "not_admin"),
    ("undecodable", None),
    ("max_receive_count", None),
]


def letter(i: int) -> tuple[str, dict[str, Any]]:
    """The i-th dead letter's body and failure record."""
    kind, reason = KINDS[i % len(KINDS)]
    op = ["INVITE_USER", "REMOVE_USER", "VERIFY_PERMISSIONS"][i % 3]
    body: dict[str, Any] = {
        "operationType": op,
        "channelId": f"-100{i % 50}",
        "subscriptionId": f"sub-{i}",
        "timestamp": "2026-12-01T10:00:00.000Z",
        "maxRetries": 3,
    }
    if op != "VERIFY_PERMISSIONS":
        body["userId"] = 1000 + i
    record: dict[str, Any] = {
        "error": f"Telegram said no ({reason or kind})",
        "kind": kind,
        "attempts": 1 + i % 4,
        "firstAttemptAt": "2026-12-01T10:00:00.000Z",
        "lastAttemptAt": "2026-12-01T10:00:09.000Z",
        "originalMessageId": f"orig-{i}",
        "operationType": op,
    }
    if reason:
        record["detail"] = {"reason": reason}
        if op == "INVITE_USER":
            record["detail"].update(inviteLink=f"https://t.me/+link{i}", linkValid=True)
    return (json.dumps(body) if kind != "undecodable" else f"not json {i}"), record


async def fill(transport: Transport, count: int) -> None:
    """Put ``count`` dead letters on the DLQ the way the worker does."""
    for start in range(0, count, 10):
        entries = [
            OutgoingMessage(letter(i)[0], f"g{i}", f"d{i}")
            for i in range(start, min(count, start + 10))
        ]
        await transport.send_batch(entries)
    done = 0
    while done < count:
        for message in await transport.receive(10, wait_seconds=0):
            await transport.dead_letter(message, letter(int(message.group_id[1:]))[1])
            done += 1


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port; (runner, base URL)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    """Seconds ``work()`` takes."""
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


async def render_bench(letters: int, reps: int) -> dict[str, Any]:
    """Time the dead-letter page beside its baselines."""
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        async with SqliteTransport(f"sqlite:///{Path(tmp) / 'q.db'}") as transport:
            await fill(transport, letters)
            runner, url = await serve(create_app(transport, refresh=3600))
            try:
                async with aiohttp.ClientSession() as session:
                    first = (await transport.dlq_list())[0].message_id

                    async def table() -> None:
                        async with session.get(url + "/dead-letters") as response:
                            html = await response.text()
                        rows = html.count('<tr class="dead-letter"')
                        if response.status != 200 or rows != letters:
                            raise SystemExit(f"page: {response.status}, {rows} rows")

                    async def detail() -> None:
                        async with session.get(f"{url}/dead-letters/{first}") as response:
                            await response.read()

                    async def listing() -> None:
                        await transport.dlq_list(10_000)

                    async def dumps() -> None:
                        listed = await transport.dlq_list(10_000)
                        json.dumps([[x.message_id, x.body, x.failure] for x in listed])

                    cases = {
                        "GET /dead-letters (1 page)": table,
                        "GET /dead-letters/{id}": detail,
                        "baseline: dlq_list()": listing,
                        "baseline: dlq_list() + json.dumps": dumps,
                    }
                    names = list(cases)
                    seconds: dict[str, list[float]] = {name: [] for name in names}
                    for work in cases.values():  # warm-up
                        await work()
                    for rep in range(reps):
                        for name in names[rep % len(names) :] + names[: rep % len(names)]:
                            seconds[name].append(await timed(cases[name]))
                        shown = "  ".join(f"{n} {seconds[n][-1] * 1000:.0f} ms" for n in names)
                        print(f"rep {rep + 1}/{reps}  {shown}", file=sys.stderr, flush=True)
            finally:
                await runner.cleanup()
    return {
        "letters": letters,
        "reps": reps,
        "summary": {
            name: {
                "median_ms": statistics.median(values) * 1000,
                "min_ms": min(values) * 1000,
                "max_ms": max(values) * 1000,
            }
            for name, values in seconds.items()
        },
        "seconds": seconds,
    }


class Counting:
    """A transport wrapper that counts ``stats()`` calls."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.calls = 0

    async def stats(self) -> QueueStats:
        """Count, then ask the real queue."""
        self.calls += 1
        return await self.inner.stats()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def polling_bench(clients: int, refresh: float, intervals: int) -> dict[str, Any]:
    """Stats calls while ``clients`` clients poll /api/overview back to back."""
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        async with SqliteTransport(f"sqlite:///{Path(tmp) / 'q.db'}") as inner:
            counting = Counting(inner)
            app = create_app(counting, refresh=refresh)  # type: ignore[arg-type]
            runner, url = await serve(app)
            requests = 0
            try:
                connector = aiohttp.TCPConnector(limit=clients)
                async with aiohttp.ClientSession(connector=connector) as session:
                    # The clock starts with the first poll (the app's start-up made it).
                    async with session.get(url + "/api/overview") as response:
                        await response.read()
                    start = time.monotonic()
                    stop = start + refresh * intervals

                    async def client() -> None:
                        nonlocal requests
                        while time.monotonic() < stop:
                            async with session.get(url + "/api/overview") as response:
                                await response.read()
                            requests += 1

                    await asyncio.gather(*(client() for _ in range(clients)))
                    elapsed = time.monotonic() - start
                    calls = counting.calls
            finally:
                await runner.cleanup()
    elapsed_intervals = elapsed / refresh
    return {
        "clients": clients,
        "refresh_s": refresh,
        "seconds": elapsed,
        "intervals": elapsed_intervals,
        "stats_calls": calls,
        # The first poll stands at t=0, so N whole intervals hold N + 1 polls.
        "calls_per_interval": (calls - 1) / int(elapsed_intervals)
        if elapsed_intervals >= 1
        else None,
        "requests": requests,
        "requests_per_s": requests / elapsed,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--refresh", type=float, default=0.5)
    parser.add_argument("--intervals", type=int, default=6)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.letters < 1 or args.reps < 1 or args.intervals < 1 or args.refresh <= 0:
        parser.error("--letters, --reps and --intervals must be at least 1, --refresh > 0")
    return args


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Both parts."""
    render = await render_bench(args.letters, args.reps)
    polling = []
    for clients in [int(c) for c in args.clients.split(",")]:
        polling.append(await polling_bench(clients, args.refresh, args.intervals))
        print(f"{clients} clients: {polling[-1]['stats_calls']} stats calls", file=sys.stderr)
    return {"benchmark": "dashboard", "render": render, "polling": polling}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the tables."""
    args = parse_args(argv)
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
        return 0
    render = result["render"]
    print(f"\n{render['letters']:,} dead letters, {render['reps']} repetitions")
    print("| measure | median (ms) | min (ms) | max (ms) |")
    print("|---|---:|---:|---:|")
    for name, figures in render["summary"].items():
        print(
            f"| {name} | {figures['median_ms']:.1f} | {figures['min_ms']:.1f} | "
            f"{figures['max_ms']:.1f} |"
        )
    print(f"\npolling /api/overview back to back, refresh {args.refresh:g} s")
    print("| clients | seconds | intervals | stats calls | calls per interval | requests | req/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in result["polling"]:
        per = row["calls_per_interval"]
        print(
            f"| {row['clients']} | {row['seconds']:.2f} | {row['intervals']:.1f} | "
            f"{row['stats_calls']} | {'' if per is None else f'{per:.2f}'} | "
            f"{row['requests']:,} | {row['requests_per_s']:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
