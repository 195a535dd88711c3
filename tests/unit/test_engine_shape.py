"""The engine's shape (issue 18): decisions returned, one chain runner, a declared lifecycle
instead of probes, no process-wide side effects at import or in constructors, no cycle."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
import telegram as tg

from botqueue import BotQueueConsumer, BotQueueProducer, RetryableError
from botqueue.consumer import ChainRunner, Decision, Retrying
from botqueue.operations import AnyOperation
from botqueue.service import Lifecycle, Unavailable
from botqueue.telegram.errors import map_telegram_error
from botqueue.telegram.request import FloodAnswer
from botqueue.transports import SqliteTransport
from tests.factories import remove
from tests.services import RecordingService

ROOT = Path(__file__).resolve().parents[2]


class ManagedService(RecordingService):
    """A service declaring the whole optional lifecycle."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("start")

    async def aclose(self) -> None:
        self.events.append("aclose")

    @property
    def bot_state(self) -> PausedNever:
        return PausedNever()


class PausedNever:
    """A bot state that is always available."""

    def unavailable(self) -> Unavailable | None:
        return None

    async def wait_available(self) -> None:
        return None

    async def absorbs(self, error: BaseException, key: object) -> bool:
        return False


def test_a_plain_service_declares_nothing() -> None:
    lifecycle = Lifecycle.of(RecordingService())
    assert lifecycle.start is None and lifecycle.bot_state is None
    assert lifecycle.add_request_observer is None and lifecycle.flood_stats is None


def test_the_declared_lifecycle_is_read_once() -> None:
    lifecycle = Lifecycle.of(ManagedService())
    assert lifecycle.start is not None and isinstance(lifecycle.bot_state, PausedNever)


async def test_the_consumer_starts_and_closes_the_service(
    sqlite_transport: SqliteTransport,
) -> None:
    service = ManagedService()
    await BotQueueProducer(sqlite_transport).enqueue(remove(sub="s1"))
    consumer = BotQueueConsumer(
        service, sqlite_transport, log_operations=False, drain=True, wait_time_seconds=0
    )
    await consumer.run()
    assert service.events == ["start", "aclose"]
    assert service.calls == ["s1"]


async def test_a_chain_stops_at_its_first_unsettled_message(
    sqlite_transport: SqliteTransport,
) -> None:
    def fail_s2(op: AnyOperation, count: int) -> None:
        if op.subscription_id == "s2":
            raise RetryableError("Bad Gateway")

    await BotQueueProducer(sqlite_transport).enqueue_many([remove(sub=f"s{n}") for n in (1, 2, 3)])
    service = RecordingService(fail_s2)
    consumer = BotQueueConsumer(service, sqlite_transport, log_operations=False)
    seen: list[Decision | None] = []

    def rest_delay(failed: Decision | None) -> float:
        seen.append(failed)
        return 0.0

    runner = ChainRunner(consumer.processor, asyncio.Event(), rest_delay=rest_delay)
    chain = await sqlite_transport.receive(3, wait_seconds=0)
    left = await runner.run(chain)
    assert [m.message_id for m in left] == [m.message_id for m in chain[1:]]
    assert service.calls == ["s1", "s2"]  # s3 never ran ahead of the failed s2
    # The rest's visibility is chosen knowing what the processor decided for s2.
    assert len(seen) == 1 and isinstance(seen[0], Retrying) and seen[0].seconds
    await consumer.acks.flush()


def test_a_429_needs_no_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # python-telegram-bot's own RetryAfter warns here without PTB_TIMEDELTA; ours does not.
    monkeypatch.delenv("PTB_TIMEDELTA", raising=False)
    answer = FloodAnswer(7)
    assert isinstance(answer, tg.error.RetryAfter)
    assert map_telegram_error(answer).retry_after == 7


def run_python(script: str) -> str:
    """``script`` in a fresh interpreter without PTB_TIMEDELTA; its output."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_no_global_state_changes_at_import_or_construction() -> None:
    out = run_python(
        "import logging, os\n"
        "from botqueue.telegram import TelegramBotService\n"
        "TelegramBotService('123456:abc', api_url='http://127.0.0.1:9')\n"
        "print(os.environ.get('PTB_TIMEDELTA'), logging.getLogger('httpx').level)"
    )
    assert out == "None 0"


def test_membership_does_not_import_the_service() -> None:
    out = run_python(
        "import sys\n"
        "import botqueue.telegram.membership\n"
        "print('botqueue.telegram.service' in sys.modules)"
    )
    assert out == "False"
