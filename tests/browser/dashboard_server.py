"""``botqueue dashboard`` as the user starts it: a subprocess on a free loopback port.

A subprocess rather than ``create_app`` in the test's process: it runs the real command line
(option parsing, the configured transport, ``serve()``), and Selenium's calls block, which
would stall an aiohttp server sharing the test's thread and event loop.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.sqs_servers import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Dashboard:
    """A running dashboard: its base URL and the file its output goes to."""

    url: str
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        """The end of the dashboard's output, for failure messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _answers(url: str) -> bool:
    """True once anything answers HTTP at ``url`` (an error status is an answer too)."""
    try:
        with urllib.request.urlopen(url, timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@contextlib.contextmanager
def running_dashboard(
    folder: Path,
    queue_args: Sequence[str],
    *,
    refresh: float = 1.0,
    env: Mapping[str, str] | None = None,
    name: str = "dashboard",
) -> Iterator[Dashboard]:
    """Start ``python -m botqueue dashboard`` on the queue ``queue_args`` name; stop it after.

    A dashboard that exits or does not answer within START_TIMEOUT fails the test with its
    output: that is the dashboard's defect, not a missing server.
    """
    port = free_port()
    command = [
        sys.executable, "-m", "botqueue", "dashboard",
        "--host", "127.0.0.1", "--port", str(port), "--refresh", f"{refresh:g}",
        *queue_args,
    ]  # fmt: skip
    dashboard = Dashboard(f"http://127.0.0.1:{port}", folder / f"{name}.log")
    child_env = {**os.environ, "BOTQUEUE_LOG_LEVEL": "warning", **(env or {})}
    with dashboard.log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(dashboard.url + "/"):
            if process.poll() is not None:
                pytest.fail(
                    f"botqueue dashboard exited with {process.returncode}:\n{dashboard.log_tail()}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                pytest.fail(f"botqueue dashboard did not answer:\n{dashboard.log_tail()}")
            time.sleep(0.1)
        yield dashboard
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
