"""A no-op bot service for ``botqueue worker --service tests.chaos.noop_service:NoopService``
that writes its progress to a file, so the load scenario can time the worker from outside.

With ``CHAOS_PROGRESS_FILE`` set, it appends ``calls wall cpu`` (its call count, then
``time.perf_counter()`` and ``time.process_time()`` of the worker process) after the first
call and after every ``CHAOS_PROGRESS_EVERY`` calls, and ``end calls`` when the worker closes
it. The service itself is the benchmarks' CountingService (bench/_common.py): it succeeds at
once.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from botqueue import Outcome

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    # The bench scripts import their helpers as top-level modules (``from _common import``).
    sys.path.append(str(BENCH))

from _common import CountingService  # noqa: E402 (needs the bench folder on sys.path)


class NoopService(CountingService):
    """CountingService that also records ``calls wall cpu`` lines in CHAOS_PROGRESS_FILE."""

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get("CHAOS_PROGRESS_FILE")
        self.every = max(1, int(os.environ.get("CHAOS_PROGRESS_EVERY", "100")))
        # Line-buffered: a line is in the file as soon as it is written, for the watcher.
        self._out = open(path, "a", buffering=1) if path else None  # noqa: SIM115 (kept open)

    async def _call(self) -> Outcome:
        outcome = await super()._call()
        if self._out is not None and (self.calls == 1 or self.calls % self.every == 0):
            self._out.write(f"{self.calls} {time.perf_counter()} {time.process_time()}\n")
        return outcome

    async def aclose(self) -> None:
        """Write ``end calls``, every call made (repeats included), when the worker stops."""
        if self._out is not None:
            self._out.write(f"end {self.calls}\n")
            self._out.close()
