"""Bot API calls per operation, and a mixed backlog's operations/s at a strict flood limit.

    .venv/bin/python bench/bench_calls.py [--baseline /path/to/other/checkout]
        [--ops 600] [--rate 30] [--reps 2] [--kick-seconds 0,1] [--concurrency 10] [--json]

One sandbox process (this checkout's) serves every contender: this checkout and, with
``--baseline``, another checkout of botqueue (say today's main), each run in its own Python
process with ``PYTHONPATH`` pointing at it, side by side in the same run.

Calls per operation: a probe process per contender runs the real TelegramBotService against
the sandbox (no flood limit) and reads the sandbox's request counts around one invite (a user
who started the bot, not a member), one removal (a member) and one verification; then again
with a 502 answering the operation's second Bot API call (its only call for a verification),
counting every call of the failed attempt and of the retry that completes it. getMe, made
once per process, is not counted.

Mixed backlog: per repetition and contender, the sandbox is reset, its flood limit set to
``--rate`` calls/s per token (strict: a sliding one-second window, 429 above it), and a fresh
queue file filled with ``--ops`` operations, half invites and half removals, each in its own
(channel, user) group over 20 channels, every removal's user a member and every invite's user
one who started the bot. A ``botqueue worker`` process of the contender drains it (rate
``--rate``, ``--concurrency``); operations/s is ``--ops`` over the time from its getMe to the
queue being empty. The run is checked: every removal's user out, one message per invite,
nothing dead-lettered. ``--kick-seconds`` sets how long a plain unban of a member takes in the
sandbox (TDLib waits 1 s between kicking and setting Left; 0 answers at once).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import run_sandbox

ROOT = Path(__file__).resolve().parent.parent
CHANNELS, USER_BASE, PREMIUM = 20, 100_000, "-1001000000001"
CHANNEL_BASE = -1002000000000
POLL = 0.05


# -- the probe: runs in the contender's process ---------------------------------------------


def _note(order: list[str], method: str, *_: Any) -> None:
    order.append(method)


async def probe(url: str) -> dict[str, dict[str, Any]]:
    """Calls per operation for the botqueue on sys.path: a first attempt, then a 502 on the
    operation's second call and on its last (each once, with the retry that completes it)."""
    from botqueue.operations import InviteUser, RemoveUser, VerifyPermissions

    cases: dict[str, Any] = {
        "invite": InviteUser(user_id=1004, channel_id=PREMIUM, subscription_id="c", order_id="o"),
        "removal": RemoveUser(
            user_id=1001, channel_id=PREMIUM, subscription_id="c", reason="expiry"
        ),
        "verify": VerifyPermissions(channel_id=PREMIUM),
    }
    found: dict[str, dict[str, Any]] = {}
    for name, op in cases.items():
        first = found[name] = await _count(url, op, None)
        order = first["sequence"]
        for method in dict.fromkeys([order[min(1, len(order) - 1)], order[-1]]):
            found[f"{name}, 502 on {method}"] = await _count(url, op, method)
    return found


async def _count(url: str, op: Any, fault: str | None) -> dict[str, Any]:
    from botqueue.sandbox import DEFAULT_TOKEN, SandboxControl
    from botqueue.service import dispatch
    from botqueue.telegram.limiter import FloodLimiter
    from botqueue.telegram.service import TelegramBotService

    async with SandboxControl(url) as control:
        await control.reset()
        service = TelegramBotService(DEFAULT_TOKEN, api_url=url, limiter=FloodLimiter())
        await service.start()  # getMe, once per process: not counted
        order: list[str] = []
        note = functools.partial(_note, order)
        if hasattr(service, "add_request_observer"):
            service.add_request_observer(note)
        else:  # a --baseline checkout from before the declared lifecycle
            service.request_observers.append(note)
        if fault:
            await control.inject_fault(fault, 502, "Bad Gateway")
        before = dict((await control.requests())["methods"])
        attempts = 0
        try:
            while True:
                attempts += 1
                try:
                    outcome = await dispatch(service, op)
                    break
                except Exception as error:  # the 502's retry, as the worker would
                    if attempts > 1 or type(error).__name__ != "TelegramRetryableError":
                        raise
        finally:
            await service.aclose()
        after = (await control.requests())["methods"]
    calls = {m: n - before.get(m, 0) for m, n in after.items() if n > before.get(m, 0)}
    return {
        "calls": sum(calls.values()),
        "methods": calls,
        "sequence": order,
        "status": outcome.status,
        "attempts": attempts,
    }


# -- the benchmark: runs in this checkout's process -------------------------------------------


def world(ops: int) -> dict[str, Any]:
    """The default world plus 20 channels; user i is a member of channel i % 20 if i is odd."""
    from botqueue.sandbox import DEFAULT_WORLD

    rights = {"can_invite_users": True, "can_restrict_members": True}
    channels = [
        {
            "id": CHANNEL_BASE - c,
            "title": f"Mixed {c}",
            "creator": 1,
            "bot_rights": rights,
            "members": [USER_BASE + i for i in range(c, ops, CHANNELS) if i % 2],
        }
        for c in range(CHANNELS)
    ]
    users = [{"id": USER_BASE + i, "first_name": f"U{i}"} for i in range(ops)]
    return {
        "bots": DEFAULT_WORLD["bots"],
        "channels": [*DEFAULT_WORLD["channels"], *channels],
        "users": [*DEFAULT_WORLD["users"], *users],
    }


def operations(ops: int) -> list[Any]:
    """Invites (even i: started the bot, not in) and removals (odd i: members), alternating."""
    from botqueue.operations import InviteUser, RemoveUser

    made: list[Any] = []
    for i in range(ops):
        user, channel = USER_BASE + i, str(CHANNEL_BASE - i % CHANNELS)
        if i % 2:
            made.append(
                RemoveUser(
                    user_id=user, channel_id=channel, subscription_id=f"s{i}", reason="expiry"
                )
            )
        else:
            made.append(
                InviteUser(user_id=user, channel_id=channel, subscription_id=f"s{i}", order_id="o")
            )
    return made


def start_sandbox(workdir: Path, ops: int) -> tuple[subprocess.Popen[bytes], str]:
    """This checkout's sandbox on a free port; returned once healthy."""
    return run_sandbox(world(ops), workdir, env={**os.environ, "PYTHONPATH": str(ROOT)})


def run_probe(root: Path, url: str) -> dict[str, Any]:
    """The probe in a process whose botqueue is the checkout at ``root``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--probe", url]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(command, env=env, capture_output=True, check=False, timeout=300, cwd=root)
    if done.returncode:
        raise RuntimeError(f"probe failed for {root}: {done.stderr.decode()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def drain(
    root: Path, url: str, args: argparse.Namespace, kick: float, concurrency: int
) -> dict[str, Any]:
    """One contender's worker draining a fresh mixed backlog; returns its measures."""
    from botqueue import BotQueueProducer
    from botqueue.sandbox import DEFAULT_TOKEN, SandboxControl
    from botqueue.transports import SqliteTransport

    async with SandboxControl(url) as control:
        await control.reset()
        await control.set_flood(args.rate)
        await control.set_kick_seconds(kick)
        with tempfile.TemporaryDirectory(prefix="bench-calls-") as tmp:
            queue = f"sqlite:///{tmp}/queue.db"
            async with SqliteTransport(queue) as transport:
                await BotQueueProducer(transport).enqueue_many(operations(args.ops))
            env = {
                **os.environ,
                "PYTHONPATH": str(root),
                "BOT_OPERATIONS_QUEUE_URL": queue,
                "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
                "TELEGRAM_API_BASE_URL": url,
                "TELEGRAM_RATE_LIMIT": str(args.rate),
                "BOTQUEUE_CONCURRENCY": str(concurrency),
                "BOTQUEUE_WAIT_TIME": "1",
                "BOTQUEUE_LOG_LEVEL": "warning",
            }
            with open(Path(tmp) / "worker.log", "wb") as log:  # noqa: ASYNC230 (before the timing)
                # cwd: "python -m" puts it first on sys.path, before PYTHONPATH.
                worker = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "botqueue", "worker"),
                    env=env,
                    stdout=log,
                    stderr=log,
                    cwd=tmp,
                )
                try:
                    elapsed, stats = await _until_empty(control, queue, worker)
                finally:
                    worker.send_signal(signal.SIGTERM)
                    await asyncio.wait_for(worker.wait(), 60)
            counts = await control.requests()
            await _check(control, args.ops, stats.dead_letters)
    methods = dict(counts["methods"])
    methods.pop("getMe", None)
    return {
        "seconds": elapsed,
        "ops_per_s": args.ops / elapsed,
        "calls": sum(methods.values()),
        "rate_limited": counts["rate_limited"],
        "methods": methods,
    }


async def _until_empty(control: Any, queue: str, worker: Any) -> tuple[float, Any]:
    from botqueue.transports import SqliteTransport

    while (await control.requests())["methods"].get("getMe", 0) < 1:
        if worker.returncode is not None:
            raise RuntimeError("the worker exited before it started")
        await asyncio.sleep(POLL)
    started = time.perf_counter()
    async with SqliteTransport(queue) as transport:
        while True:
            stats = await transport.stats()
            if stats.visible == 0 and stats.in_flight == 0:
                return time.perf_counter() - started, stats
            if worker.returncode is not None:
                raise RuntimeError("the worker exited with work left")
            await asyncio.sleep(POLL)


async def _check(control: Any, ops: int, dead_letters: int) -> None:
    if dead_letters:
        raise RuntimeError(f"{dead_letters} operations dead-lettered")
    for c in range(CHANNELS):
        roster = await control.members(CHANNEL_BASE - c)
        if roster["members"] or roster["banned"]:
            raise RuntimeError(f"channel {c}: not every removal done: {roster}")
    sent = len([m for m in await control.messages() if m["chat_id"] >= USER_BASE])
    if sent != (ops + 1) // 2:
        raise RuntimeError(f"{sent} invite messages for {(ops + 1) // 2} invites")


async def main_async(args: argparse.Namespace, url: str) -> dict[str, Any]:
    """Calls per operation per contender, then the mixed backlog side by side."""
    contenders = [("this checkout", ROOT)]
    if args.baseline:
        contenders.insert(0, ("baseline", args.baseline))
    calls = {name: run_probe(root, url) for name, root in contenders}
    runs: list[dict[str, Any]] = []
    plan = itertools.product(range(args.reps), args.concurrency, args.kick_seconds)
    for rep, concurrency, kick in plan:
        order = contenders if rep % 2 == 0 else contenders[::-1]
        for name, root in order:
            result = await drain(root, url, args, kick, concurrency)
            setting = {"kick_seconds": kick, "concurrency": concurrency, "rep": rep + 1}
            runs.append({"contender": name, **setting, **result})
            print(
                f"rep {rep + 1} concurrency {concurrency} kick {kick:g}s {name}: "
                f"{result['ops_per_s']:.2f} ops/s "
                f"({result['seconds']:.1f} s, {result['calls']} calls, "
                f"{result['rate_limited']} answered 429)",
                file=sys.stderr,
            )
    settings = {k: getattr(args, k) for k in ("ops", "rate", "reps")}
    roots = {name: str(root) for name, root in contenders}
    return {"calls": calls, "runs": runs, "settings": settings, "contenders": roots}


def print_tables(data: dict[str, Any]) -> None:
    """Calls per operation, then median operations/s per contender and kick time."""
    names = list(data["calls"])
    print("\nBot API calls per operation (getMe excluded):\n")
    print("| operation | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    cases = list(dict.fromkeys(case for name in names for case in data["calls"][name]))
    for case in cases:
        cells = []
        for name in names:
            found = data["calls"][name].get(case)
            cells.append("" if found is None else f"{found['calls']} {found['methods']}")
        print(f"| {case} | " + " | ".join(cells) + " |")
    print(f"\nMixed backlog, {data['settings']}:\n")
    print("| concurrency | kick s | contender | median ops/s | runs | calls | 429s | vs first |")
    print("|---:|---:|---|---:|---|---:|---:|---:|")
    settings = dict.fromkeys((r["concurrency"], r["kick_seconds"]) for r in data["runs"])
    for concurrency, kick in settings:
        first = None
        for name in names:
            mine = [
                r
                for r in data["runs"]
                if (r["contender"], r["concurrency"], r["kick_seconds"])
                == (name, concurrency, kick)
            ]
            median = statistics.median(r["ops_per_s"] for r in mine)
            first = first or median
            each = ", ".join(f"{r['ops_per_s']:.2f}" for r in mine)
            calls = statistics.median(r["calls"] for r in mine)
            limited = sum(r["rate_limited"] for r in mine)
            print(
                f"| {concurrency} | {kick:g} | {name} | {median:.2f} | {each} | {calls:g} | "
                f"{limited} | "
                f"{median / first:.3f}x |"
            )


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, start the sandbox, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--baseline", type=lambda p: Path(p).resolve(), help="another checkout, side by side"
    )
    parser.add_argument("--ops", type=int, default=600, help="operations per backlog")
    parser.add_argument("--rate", type=int, default=30, help="flood limit, calls/s per token")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument(
        "--concurrency",
        type=lambda text: [int(x) for x in text.split(",")],
        default=[10],
        help="worker concurrency (comma-separated; 10 is the worker's default)",
    )
    parser.add_argument(
        "--kick-seconds",
        type=lambda text: [float(x) for x in text.split(",")],
        default=[0.0, 1.0],
        help="how long a plain unban of a member takes in the sandbox (comma-separated)",
    )
    parser.add_argument("--json", action="store_true", help="print the raw results as JSON")
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(asyncio.run(probe(args.probe))))
        return 0
    from botqueue.logs import configure_logging

    configure_logging("warning", stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-calls-sandbox-") as tmp:
        process, url = start_sandbox(Path(tmp), args.ops)
        try:
            data = asyncio.run(main_async(args, url))
        finally:
            process.terminate()
            process.wait(timeout=10)
    if args.json:
        print(json.dumps(data, indent=1))
    else:
        print_tables(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
