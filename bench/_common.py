"""What the benchmarks share: a bot service that only counts its calls, and a sandbox process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from botqueue import InviteUser, Outcome, RemoveUser, VerifyPermissions


class CountingService:
    """A bot service that succeeds at once (or after ``seconds``, a stand-in for the Bot API's
    latency), counts its calls, notes when the last one finished, and sets ``done`` once
    ``total`` calls have been made."""

    def __init__(self, seconds: float = 0.0, total: int | None = None) -> None:
        self.seconds = seconds
        self.total = total
        self.calls = 0
        self.last_call = 0.0
        self.done = asyncio.Event()

    async def _call(self) -> Outcome:
        if self.seconds:
            await asyncio.sleep(self.seconds)
        self.calls += 1
        self.last_call = time.perf_counter()
        if self.total is not None and self.calls >= self.total:
            self.done.set()
        return Outcome()

    async def invite_user(self, op: InviteUser) -> Outcome:
        """Count the call."""
        return await self._call()

    async def remove_user(self, op: RemoveUser) -> Outcome:
        """Count the call."""
        return await self._call()

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome:
        """Count the call."""
        return await self._call()


def run_sandbox(
    world: dict[str, Any], workdir: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m botqueue sandbox`` with ``world`` on a free port (its output in
    ``workdir/sandbox.log``); returned with its URL once it answers healthy."""
    (workdir / "world.json").write_text(json.dumps(world), encoding="utf-8")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "botqueue", "sandbox", "--port", str(port)]
    command += ["--world", str(workdir / "world.json")]
    with (workdir / "sandbox.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/_sandbox/health", timeout=1).json().get("ok"):
                return process, url
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"sandbox did not start: {(workdir / 'sandbox.log').read_text()}")
