"""`botqueue worker --reload`: a change to a source file restarts the worker process; SIGTERM
stops the whole thing gracefully."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .worker_process import ROOT

SERVICE = """
import os
from botqueue.service import Outcome

# One line per import: one per worker process started.
with open(os.environ["RELOAD_STARTS"], "a") as starts:
    starts.write(f"{os.getpid()}\\n")


class Service:
    async def invite_user(self, op):
        return Outcome()

    async def remove_user(self, op):
        return Outcome()

    async def verify_permissions(self, op):
        return Outcome()
"""


def starts(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()] if path.exists() else []


def wait_for(condition: object, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_source_change_restarts_the_worker(tmp_path: Path) -> None:
    (tmp_path / "reload_svc.py").write_text(SERVICE)
    log = tmp_path / "starts.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "RELOAD_STARTS": str(log),
        "BOT_OPERATIONS_QUEUE_URL": f"sqlite:///{tmp_path / 'queue.db'}",
        "BOTQUEUE_LOG_LEVEL": "warning",
    }
    reloader = subprocess.Popen(
        [sys.executable, "-m", "botqueue", "worker", "--reload", "--service", "reload_svc:Service",
         "--wait-time", "0.2", "--grace-period", "5"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: len(starts(log)) == 1)
        time.sleep(0.5)  # let the watcher settle before the change
        (tmp_path / "reload_svc.py").write_text(SERVICE + "\n# changed\n")
        wait_for(lambda: len(starts(log)) == 2)
        first, second = starts(log)
        assert first != second
        wait_for(lambda: not alive(first))  # the old worker was stopped, not left behind
        assert reloader.poll() is None
        (tmp_path / "notes.txt").write_text("not Python: no restart")
        time.sleep(2.5)  # longer than the watcher's debounce
        assert len(starts(log)) == 2
    finally:
        reloader.send_signal(signal.SIGTERM)
        _, stderr = reloader.communicate(timeout=30)
    assert reloader.returncode == 0, stderr
    assert not alive(second)
    assert "Traceback" not in stderr
