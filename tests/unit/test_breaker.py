"""The outage circuit breaker on its own, with a scripted getMe probe."""

from __future__ import annotations

import asyncio

from botqueue.telegram.breaker import BreakerSettings, CircuitBreaker, is_outage_failure
from botqueue.telegram.errors import TelegramPermanentError, TelegramRetryableError

FAST = BreakerSettings(failures=3, window=2.0, probe_min=0.01, probe_max=0.05)


class Probe:
    """getMe that fails server-side while ``down`` and answers otherwise."""

    def __init__(self, down: bool) -> None:
        self.down = down
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.down:
            raise TelegramRetryableError("Bad Gateway", reason="server_or_network")


def outage() -> TelegramRetryableError:
    return TelegramRetryableError("Bad Gateway", reason="server_or_network")


async def test_failures_with_a_failing_probe_open_it_and_an_answer_closes_it() -> None:
    probe = Probe(down=True)
    breaker = CircuitBreaker(probe, FAST)
    assert await breaker.absorbs("op-1") is True  # op-1 plus two failed probes
    assert breaker.is_open and breaker.openings == 1
    probe.down = False
    await asyncio.wait_for(breaker.wait_closed(), 5)
    assert not breaker.is_open and breaker.unavailable_seconds > 0
    await breaker.aclose()


async def test_an_answering_probe_makes_the_failure_the_operations_own() -> None:
    probe = Probe(down=False)
    breaker = CircuitBreaker(probe, FAST)
    assert await breaker.absorbs("op-1") is False
    assert not breaker.is_open and breaker.openings == 0 and probe.calls == 1
    await breaker.aclose()


async def test_distinct_operations_open_it_without_waiting_for_probes() -> None:
    probe = Probe(down=True)
    breaker = CircuitBreaker(probe, BreakerSettings(failures=3, window=2.0, probe_min=10.0))
    results = await asyncio.gather(*(breaker.absorbs(f"op-{n}") for n in range(3)))
    assert results == [True, True, True]
    assert breaker.openings == 1
    await breaker.aclose()


async def test_a_success_elsewhere_releases_a_suspected_failure() -> None:
    probe = Probe(down=True)
    breaker = CircuitBreaker(probe, BreakerSettings(failures=5, window=5.0, probe_min=1.0))
    pending = asyncio.create_task(breaker.absorbs("op-1"))
    await asyncio.sleep(0.05)
    breaker.record_success()  # another call was answered meanwhile
    assert await asyncio.wait_for(pending, 2) is False
    assert not breaker.is_open
    await breaker.aclose()


def test_only_server_side_and_network_failures_count() -> None:
    assert is_outage_failure(outage())
    assert is_outage_failure(TelegramRetryableError("timed out", reason="timeout"))
    assert not is_outage_failure(TelegramRetryableError("429", reason="flood", retry_after=3))
    assert not is_outage_failure(TelegramPermanentError("Bad Request: x", reason="bad_request"))
