"""``python -m botqueue worker`` subprocesses for the chaos scenarios: start one with an
environment, SIGKILL it, stop it gracefully, and read what it printed (each line stamped with
the monotonic time it arrived, so a scenario can time what a worker did)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

STARTED: list[Worker] = []
"""Every worker this process started, in order: the secrets sweep reads all their output."""


@dataclass
class Worker:
    """One worker process and the lines it printed, as (monotonic time, text)."""

    name: str
    process: asyncio.subprocess.Process
    started_at: float
    lines: list[tuple[float, str]] = field(default_factory=list)
    killed_at: float | None = None
    token: str = ""  # the TELEGRAM_BOT_TOKEN it was given, which its output must never show
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def returncode(self) -> int | None:
        """The exit status once the process has exited (-9 after a SIGKILL)."""
        return self.process.returncode

    def first_line(self, containing: str) -> float | None:
        """When the first line containing ``containing`` arrived, or None."""
        return next((at for at, text in self.lines if containing in text), None)

    def output(self) -> str:
        """Everything the process printed so far (stdout and stderr, as they arrived)."""
        return "".join(text for _, text in self.lines)


async def start(
    env: Mapping[str, str], *args: str, name: str = "worker", inherit: bool = True
) -> Worker:
    """Start ``python -m botqueue worker *args`` with ``env`` over this process's environment
    (unbuffered, so lines arrive when they are written)."""
    full = {**(os.environ if inherit else {}), "PYTHONUNBUFFERED": "1", **env}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botqueue",
        "worker",
        *args,
        cwd=ROOT,
        env=full,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    worker = Worker(name, process, time.monotonic(), token=full.get("TELEGRAM_BOT_TOKEN", ""))
    STARTED.append(worker)
    assert process.stdout is not None and process.stderr is not None
    worker._readers = [
        asyncio.create_task(_collect(process.stdout, worker.lines)),
        asyncio.create_task(_collect(process.stderr, worker.lines)),
    ]
    return worker


async def kill(worker: Worker) -> None:
    """SIGKILL the process (no cleanup of any kind runs in it) and reap it."""
    if worker.process.returncode is None:
        worker.killed_at = time.monotonic()
        worker.process.send_signal(signal.SIGKILL)
    await _reap(worker, 30.0)


async def stop(worker: Worker, within: float = 60.0) -> int:
    """SIGTERM, then wait for the graceful exit; SIGKILL if it does not come ``within``
    seconds. Returns the exit status."""
    if worker.process.returncode is None:
        worker.process.send_signal(signal.SIGTERM)
    try:
        return await _reap(worker, within)
    except TimeoutError:
        await kill(worker)
        raise AssertionError(
            f"{worker.name} did not stop within {within:.0f} s of SIGTERM:\n{output(worker)}"
        ) from None


async def stop_all(workers: Sequence[Worker], within: float = 60.0) -> list[int]:
    """Stop every worker at once; their exit statuses in order."""
    return list(await asyncio.gather(*(stop(w, within) for w in workers)))


def output(worker: Worker, lines: int = 40) -> str:
    """The last lines the worker printed, for failure messages."""
    return "".join(text for _, text in worker.lines[-lines:])


async def _reap(worker: Worker, within: float) -> int:
    code = await asyncio.wait_for(worker.process.wait(), within)
    await asyncio.gather(*worker._readers, return_exceptions=True)
    return code


async def _collect(stream: asyncio.StreamReader, into: list[tuple[float, str]]) -> None:
    while line := await stream.readline():
        into.append((time.monotonic(), line.decode(errors="replace")))
