"""The suite-wide secrets check: whatever any scenario's workers printed must hold no form of
any bot token they were given (issue 12, point 7: "checked over the whole suite's output")."""

from __future__ import annotations

from collections.abc import Sequence

from tests.chaos import _workers
from tests.chaos.scenario_security import leaks


def mark() -> int:
    """Where the next scenario's workers start in ``_workers.STARTED``."""
    return len(_workers.STARTED)


def sweep(since: int = 0) -> tuple[int, int]:
    """Search the output of every worker started since ``since`` for each worker's token (in
    every form); raise AssertionError naming the leak. Returns (workers, characters) read."""
    workers: Sequence[_workers.Worker] = _workers.STARTED[since:]
    tokens = sorted({w.token for w in workers if w.token})
    texts = {f"{w.name} (pid {w.process.pid})": w.output() for w in workers}
    found = leaks(texts, *tokens) if tokens else []
    assert not found, "; ".join(found)
    return len(workers), sum(len(text) for text in texts.values())
