"""bench_flood.py's multi-worker contenders: N ``botqueue worker`` processes on one token.

Each contender fills one embedded queue, starts the workers on it against the sandbox and
measures over the window as the in-process contenders do; the budget decides what the workers
share: ``local`` (today's default on SQS: each process its own limiter at the full rate),
``split`` (each at rate / N, the old advice), ``sqlite`` (the file beside the queue) or
``redis`` (a redis-server this module starts on a free port). With ``--baseline DIR`` each
contender also runs with the botqueue of DIR (PYTHONPATH) for the workers: another checkout,
say today's main, measured in the same run against the same sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any

from botqueue import BotQueueProducer
from botqueue.operations import RemoveUser
from botqueue.sandbox import DEFAULT_TOKEN
from botqueue.transports import SqliteTransport

BUDGETS = ("local", "split", "sqlite", "redis")
"""The --budget kinds, as the module docstring describes them."""
POLL_SECONDS = 0.1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis-server (or valkey-server) on a free port, for the duration; yields its URL."""
    import redis

    binary = shutil.which("redis-server") or shutil.which("valkey-server")
    if binary is None:
        raise RuntimeError("no redis-server or valkey-server (python3 dev.py test installs it)")
    port = _free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    process = subprocess.Popen([*command, "--dir", str(folder)], stdout=subprocess.DEVNULL)
    try:
        with redis.Redis(port=port) as client:
            for _ in range(100):
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        break
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _worker_env(
    env: Any, queue: str, budget: str, workers: int, redis: str, pythonpath: str | None
) -> dict[str, str]:
    rate = env.n / workers if budget == "split" else env.n
    settings = {
        "BOT_OPERATIONS_QUEUE_URL": queue,
        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_API_BASE_URL": env.url,
        "TELEGRAM_RATE_LIMIT": str(rate),
        "TELEGRAM_CHANNEL_RATE": str(env.n),
        "TELEGRAM_RATE_LIMIT_URL": redis if budget == "redis" else "local",
        "BOTQUEUE_CONCURRENCY": "10",
        "BOTQUEUE_WAIT_TIME": "1",
        "BOTQUEUE_LOG_LEVEL": "warning",
    }
    if budget == "sqlite":
        del settings["TELEGRAM_RATE_LIMIT_URL"]  # the default: the file beside the queue
    if pythonpath is not None:
        settings["PYTHONPATH"] = pythonpath
    return {**os.environ, **settings}


async def _watch(env: Any, ok_so_far: int, until: float) -> None:
    """Successes as the sandbox counts them, spread evenly over each poll interval (the
    workers are other processes: the client's own timestamps are not to be had)."""
    last = time.perf_counter()
    while last < until:
        await asyncio.sleep(POLL_SECONDS)
        counts = await env.control.requests()
        ok, now = counts["total"] - counts["rate_limited"], time.perf_counter()
        new = ok - ok_so_far
        env.times += [last + (now - last) * (k + 1) / new for k in range(new)] if new > 0 else []
        ok_so_far, last = ok, now


async def _fill(queue: str, count: int) -> None:
    ops = [
        RemoveUser(
            user_id=100_000 + i % 2_000,
            channel_id=str(-1002000000000 - i % 20),
            subscription_id=f"w{i}",
            reason="expiry",
        )
        for i in range(count)
    ]
    async with SqliteTransport(queue) as transport:
        await BotQueueProducer(transport).enqueue_many(ops)


def _log(folder: str) -> IO[bytes]:
    return open(Path(folder) / "workers.log", "wb")


async def run_workers(env: Any, workers: int, budget: str, pythonpath: str | None = None) -> None:
    """``workers`` worker processes on one pre-filled embedded queue and one token."""
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-flood-workers-"))
        redis = stack.enter_context(redis_server(Path(tmp))) if budget == "redis" else ""
        queue = f"sqlite:///{tmp}/queue.db"
        await _fill(queue, int(env.n * env.seconds * 1.3) + 200)
        environ = _worker_env(env, queue, budget, workers, redis, pythonpath)
        log = stack.enter_context(_log(tmp))
        command = [sys.executable, "-m", "botqueue", "worker"]
        processes = [
            # In the temporary folder: ``-m`` puts the working directory first on the path,
            # which would shadow the botqueue PYTHONPATH names (--baseline).
            await asyncio.create_subprocess_exec(
                *command, env=environ, stdout=log, stderr=log, cwd=tmp
            )
            for _ in range(workers)
        ]
        try:
            # Measured once every worker has called getMe (started) and begun consuming.
            for _ in range(600):
                if (await env.control.requests())["methods"].get("getMe", 0) >= workers:
                    break
                await asyncio.sleep(0.1)
            async with env.window():
                counts = env.counts[0]
                started = time.perf_counter()
                await _watch(env, counts["total"] - counts["rate_limited"], started + env.seconds)
            ok, limited = (env.counts[1][k] - env.counts[0][k] for k in ("total", "rate_limited"))
            env.client = [ok - limited, limited]
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                await asyncio.wait_for(process.wait(), 60)


def worker_contenders(
    workers: int, budgets: list[str], baseline: str | None = None
) -> list[tuple[str, Callable[[Any], Awaitable[None]]]]:
    """(name, run) of one multi-worker contender per budget (and per checkout)."""
    plural = "worker" if workers == 1 else "workers"
    every: list[tuple[str, Callable[[Any], Awaitable[None]]]] = []
    for budget in budgets:
        name = f"botqueue, {workers} {plural}, {budget} budget"
        every.append((name, functools.partial(run_workers, workers=workers, budget=budget)))
        if baseline is not None:
            every.append(
                (
                    f"{name}, baseline",
                    functools.partial(
                        run_workers, workers=workers, budget=budget, pythonpath=baseline
                    ),
                )
            )
    return every
