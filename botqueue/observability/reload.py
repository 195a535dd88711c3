"""``botqueue worker --reload``: run the worker in a child process, restart it on code changes.

Built on ``watchfiles.watch`` rather than ``watchfiles.run_process``: run_process stops its
child with SIGINT and kills it 5 s later at exit, while a worker needs its full grace period
to finish or hand back what it holds. Here every stop is a SIGTERM followed by a wait of the
grace period (plus a margin) before a kill.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import structlog
import watchfiles

log = structlog.get_logger("botqueue.reload")

_STOP_MARGIN = 5.0
# How often the watcher wakes without changes, to notice a child that exited on its own.
_IDLE_MS = 500


def watched_paths(cwd: Path | None = None) -> list[Path]:
    """The current directory and the botqueue package (unless it lies inside the former)."""
    here = (cwd or Path.cwd()).resolve()
    package = Path(__file__).resolve().parents[1]
    return [here] if package.is_relative_to(here) else [here, package]


class Reloader:
    """Runs ``command`` and restarts it whenever a Python file under ``paths`` changes."""

    def __init__(
        self, command: Sequence[str], paths: Sequence[Path], *, grace_period: float = 30.0
    ) -> None:
        self.command = list(command)
        self.paths = list(paths)
        self.grace_period = grace_period
        self.stop_event = threading.Event()
        self.restarts = 0
        self._child: subprocess.Popen[bytes] | None = None

    def _start(self) -> None:
        self._child = subprocess.Popen(self.command)
        log.info("worker process started", pid=self._child.pid, restarts=self.restarts)

    def _stop_child(self) -> int | None:
        child = self._child
        if child is None:
            return None
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(self.grace_period + _STOP_MARGIN)
            except subprocess.TimeoutExpired:
                log.warning("worker did not stop in time, killing it", pid=child.pid)
                child.kill()
                child.wait()
        return child.returncode

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_event.set()

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; return the last child's exit code."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        log.info("watching for changes", paths=[str(p) for p in self.paths])
        self._start()
        reported_exit = False
        for changes in watchfiles.watch(
            *self.paths,
            watch_filter=watchfiles.PythonFilter(),
            stop_event=self.stop_event,
            rust_timeout=_IDLE_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            if not changes:
                code = self._child.poll() if self._child is not None else None
                if code is not None and not reported_exit:
                    log.warning("worker exited; waiting for a change to restart it", code=code)
                    reported_exit = True
                continue
            log.info("source changed, restarting the worker", files=_names(changes))
            self._stop_child()
            self.restarts += 1
            reported_exit = False
            self._start()
        code = self._stop_child()
        return 0 if code is None else code


def _names(changes: set[tuple[watchfiles.Change, str]]) -> list[str]:
    return sorted({Path(path).name for _, path in changes})[:5]


def run_with_reload(worker_args: Sequence[str], *, grace_period: float) -> int:
    """Run ``python -m botqueue worker <worker_args>`` under a Reloader."""
    command = [sys.executable, "-m", "botqueue", "worker", *worker_args]
    return Reloader(command, watched_paths(), grace_period=grace_period).run()
