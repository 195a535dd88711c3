"""Shared fixtures: embedded transports on temporary files, a controllable clock, a mocked
bot; and the ``slow`` marker, given by folder and file (and to every test on a real SQS
server) so that new tests there are marked without anyone remembering to."""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import structlog

from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService
from botqueue.transports import SqliteTransport
from tests.mocked_bot import MockedBot

# Tests build python-telegram-bot's RetryAfter (and Bots on plain HTTPXRequests) themselves,
# which warns unless the process opts in to timedelta durations. botqueue itself sets no
# environment variable (its request raises telegram.request.FloodAnswer); the test process
# is configured here, as an application would configure its own.
os.environ.setdefault("PTB_TIMEDELTA", "1")

TESTS = Path(__file__).resolve().parent
# Slow means: starts worker processes or heavy servers (LocalStack, containers, a browser),
# talks to a real SQS server, or holds real time for seconds by design. Measured by
# `pytest -m "not slow" --durations=30`; `python3 dev.py test --fast` leaves them out.
SLOW_FOLDERS = frozenset({"chaos", "deploy", "browser"})
"""Whole folders: worker kills and outages, deploy artefacts (containers, CloudFormation on
LocalStack, systemd), a real browser."""
SLOW_FILES = {
    "integration/test_demo.py": "the demo command, end to end in a process",
    "integration/test_flood_control.py": "pacing under per-second limits, in real time",
    "integration/test_flood_distance.py": "strict one-second windows with latency, ~7 s each",
    "integration/test_library_parity.py": "a library consumer beside a worker process, ~9 s",
    "integration/test_observability_worker.py": "a real worker process",
    "integration/test_sandbox_latency.py": "injected latency and jitter, in real time",
    "integration/test_shared_budget.py": "worker processes sharing one token's budget",
    "integration/test_telegram_worker.py": "real worker processes",
    "integration/test_token_leak.py": "worker processes through failures of every kind",
    "integration/test_worker_process.py": "real worker processes",
    "integration/test_worker_reload.py": "a worker restarted by its reloader",
}
"""Single files elsewhere, with why; a single test is marked where it stands."""


BEHAVIOUR_SUITE = "integration/test_transport_behaviour.py"
"""The one behaviour suite keeps every transport, moto's SQS included, in the fast loop."""


def _sqs_servers(item: pytest.Item) -> set[str]:
    """The real SQS servers a test uses: "localstack", "moto"."""
    names = set(getattr(item, "fixturenames", ())) & {"localstack_server", "moto_server"}
    servers = {name.removesuffix("_server") for name in names}
    callspec = getattr(item, "callspec", None)
    if callspec is not None:
        # The parametrised suites name their server by a parameter ("sqs_server", "transport").
        params = [value for value in callspec.params.values() if isinstance(value, str)]
        servers |= {value for value in params if value in ("localstack", "moto")}
    return servers


def _is_slow(item: pytest.Item) -> bool:
    where = item.path.relative_to(TESTS)
    if where.parts[0] in SLOW_FOLDERS or where.as_posix() in SLOW_FILES:
        return True
    # LocalStack needs a virtualenv of its own and starts slowly. A call to moto costs about
    # ten times one to the embedded queue: its tests (75 s, near half the rest) run in the
    # whole suite only, except the behaviour suite's.
    servers = _sqs_servers(item)
    return "localstack" in servers or (bool(servers) and where.as_posix() != BEHAVIOUR_SUITE)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark as ``slow`` the tests of the slow folders and files, and those on real SQS."""
    missing = [name for name in SLOW_FILES if not (TESTS / name).is_file()]
    if missing:
        # A renamed file would silently join the fast loop.
        raise pytest.UsageError(f"tests/conftest.py SLOW_FILES names no file: {missing}")
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)


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


@pytest.fixture
def mocked_bot() -> MockedBot:
    """A python-telegram-bot Bot over httpx.MockTransport, answering what the test queues."""
    return MockedBot()


@pytest.fixture
async def mocked_service(mocked_bot: MockedBot) -> AsyncIterator[TelegramBotService]:
    """A started TelegramBotService on the ``mocked_bot``; the test fails if it made a call
    that had no answer prepared."""
    # Its own generous limiter: flood control has tests of its own.
    limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000, per_user_chat=100))
    service = TelegramBotService(mocked_bot.token, bot=mocked_bot.bot, limiter=limiter)
    await service.start()
    yield service
    await service.aclose()
    assert mocked_bot.unprepared == [], "calls with no answer prepared"
