"""The suite-wide secrets sweep finds a token in any form in any worker's output."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest

from tests.chaos import _workers, secrets_sweep

TOKEN = "123456789:AAF-sweep_Secret-0123456789abcdefghij"


def fake_worker(printed: str) -> _workers.Worker:
    process: Any = SimpleNamespace(pid=4242, returncode=0)
    worker = _workers.Worker("fake", process, 0.0, [(0.0, printed)], token=TOKEN)
    _workers.STARTED.append(worker)
    return worker


@pytest.mark.parametrize(
    "printed", [TOKEN, TOKEN.partition(":")[2], quote(TOKEN, safe="")], ids=["whole", "half", "url"]
)
def test_a_token_in_any_form_fails_the_sweep(printed: str) -> None:
    since = secrets_sweep.mark()
    fake_worker(f'{{"event": "request", "url": "/bot{printed}/getMe"}}\n')
    try:
        with pytest.raises(AssertionError, match="appears in fake"):
            secrets_sweep.sweep(since)
    finally:
        del _workers.STARTED[since:]


def test_output_without_the_token_passes_and_is_counted() -> None:
    since = secrets_sweep.mark()
    fake_worker('{"event": "done", "bot": "123456789"}\n')
    try:
        assert secrets_sweep.sweep(since) == (1, len('{"event": "done", "bot": "123456789"}\n'))
    finally:
        del _workers.STARTED[since:]
