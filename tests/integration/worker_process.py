"""A `python -m botqueue worker` subprocess for the observability tests: its output collected
as it comes, its metrics server's URL read from its log, scrapes and a graceful stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    """``async with WorkerProcess(env, *args) as worker``: started, and stopped at the end."""

    def __init__(self, env: Mapping[str, str], *args: str) -> None:
        self.env = {**os.environ, "BOTQUEUE_WAIT_TIME": "0.2", **env}
        self.args = args
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.url = ""
        self.process: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> WorkerProcess:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "botqueue",
            "worker",
            *self.args,
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            asyncio.create_task(_collect(self.process.stdout, self.stdout)),
            asyncio.create_task(_collect(self.process.stderr, self.stderr)),
        ]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def listening(self, within: float = 30.0) -> str:
        """Wait for the "observability server listening" line; return the server's URL."""
        deadline = time.monotonic() + within
        while not self.url:
            for line in self.stderr:
                if "observability server listening" in line:
                    self.url = json.loads(line)["url"]
            assert time.monotonic() < deadline, self.output()
            assert self.returncode is None, self.output()
            await asyncio.sleep(0.05)
        return self.url

    @property
    def returncode(self) -> int | None:
        """The exit status, once the process has exited."""
        return None if self.process is None else self.process.returncode

    async def get(self, path: str) -> tuple[int, str]:
        """GET a path of the worker's metrics server."""
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as response:
            return response.status, await response.text()

    async def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics by (name, labels)."""
        status, text = await self.get("/metrics")
        assert status == 200
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def wait_exit(self, within: float = 60.0) -> int:
        """Wait for the process to exit by itself; return its status."""
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), within)
        await asyncio.gather(*self._readers)
        return code

    async def stop(self) -> int:
        """SIGTERM, then wait for the graceful exit; return the status."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await self.wait_exit()

    def output(self) -> str:
        """Everything the process printed so far."""
        return "".join(self.stdout) + "".join(self.stderr)


async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
    while line := await stream.readline():
        into.append(line.decode(errors="replace"))


def sample(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    """One sample of a scrape (0 when it is absent)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def sum_by(
    samples: Mapping[tuple[str, frozenset[tuple[str, str]]], float], name: str, label: str
) -> dict[str, float]:
    """A counter's samples summed by one label."""
    sums: dict[str, float] = {}
    for (sample_name, labels), value in samples.items():
        if sample_name == name:
            key = dict(labels)[label]
            sums[key] = sums.get(key, 0.0) + value
    return sums


async def until(check: Any, within: float = 60.0) -> None:
    """Wait for an async ``check()`` to return true."""
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)
