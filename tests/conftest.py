"""Shared fixtures: embedded transports on temporary files, a controllable clock."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import structlog

from botqueue.transports import SqliteTransport

# Tests build python-telegram-bot's RetryAfter (and Bots on plain HTTPXRequests) themselves,
# which warns unless the process opts in to timedelta durations. botqueue itself sets no
# environment variable (its request raises telegram.request.FloodAnswer); the test process
# is configured here, as an application would configure its own.
os.environ.setdefault("PTB_TIMEDELTA", "1")


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """Every test starts from structlog's defaults: a test that ran a command in-process
    configured a level filter, which would drop another test's captured info lines."""
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


class FakeClock:
    """Wall-clock seconds that only move when a test says so."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """An embedded queue URL in a fresh temporary file."""
    return f"sqlite:///{tmp_path / 'queue.db'}"


@pytest.fixture
def clock() -> FakeClock:
    """A clock for the embedded queue that tests move by hand."""
    return FakeClock()


@pytest.fixture
async def sqlite_transport(db_url: str) -> AsyncIterator[SqliteTransport]:
    """An open embedded transport on real time."""
    async with SqliteTransport(db_url) as transport:
        yield transport


@pytest.fixture
async def clocked_transport(db_url: str, clock: FakeClock) -> AsyncIterator[SqliteTransport]:
    """An open embedded transport whose time is the ``clock`` fixture."""
    async with SqliteTransport(db_url, clock=clock) as transport:
        yield transport


TransportFactory = Callable[..., SqliteTransport]
