"""The retry decision as a table: backoff, retry_after, exhaustion, permanent failures."""

from __future__ import annotations

import itertools
import random

import pytest

from botqueue.errors import OperationError, PermanentError, RetryableError
from botqueue.retry import (
    MAX_BACKOFF_SECONDS,
    MAX_VISIBILITY_SECONDS,
    Backoff,
    DeadLetterIt,
    Drop,
    RetryIn,
    decide,
)


@pytest.mark.parametrize(
    ("attempt", "expected"),
    [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 32), (10, 512), (11, 900), (20, 900)],
)
def test_backoff_doubles_and_caps(attempt: int, expected: float) -> None:
    assert Backoff().delay(attempt) == expected


def test_backoff_cap_is_fifteen_minutes() -> None:
    assert MAX_BACKOFF_SECONDS == 900
    assert Backoff().delay(10_000) == 900


@pytest.mark.parametrize(("base", "cap"), [(0.5, 10.0), (2.0, 60.0)])
def test_backoff_base_and_cap(base: float, cap: float) -> None:
    backoff = Backoff(base=base, cap=cap)
    delays = [backoff.delay(attempt) for attempt in range(1, 12)]
    assert delays[0] == base
    assert all(later == min(earlier * 2, cap) for earlier, later in itertools.pairwise(delays))
    assert max(delays) == cap


@pytest.mark.parametrize("jitter", [0.1, 0.5, 1.0])
@pytest.mark.parametrize("attempt", [1, 4, 9, 10, 11])
def test_jitter_stays_within_its_band_and_the_cap(jitter: float, attempt: int) -> None:
    rng = random.Random(attempt)
    plain = Backoff().delay(attempt)
    delays = [Backoff(jitter=jitter).delay(attempt, rng) for _ in range(200)]
    assert all(plain <= d <= min(plain * (1 + jitter), MAX_BACKOFF_SECONDS) for d in delays)
    if plain < MAX_BACKOFF_SECONDS:
        assert len(set(delays)) > 1


def test_jitter_with_a_seeded_rng_is_reproducible() -> None:
    backoff = Backoff(jitter=0.3)
    assert backoff.delay(5, random.Random(7)) == backoff.delay(5, random.Random(7))


@pytest.mark.parametrize(
    ("attempt", "max_retries", "expected"),
    [
        (1, 3, RetryIn(1)),
        (2, 3, RetryIn(2)),
        (3, 3, RetryIn(4)),
        (4, 3, DeadLetterIt("exhausted")),
        (5, 3, DeadLetterIt("exhausted")),
        (1, 0, DeadLetterIt("exhausted")),
        (1, 1, RetryIn(1)),
        (2, 1, DeadLetterIt("exhausted")),
        (20, 20, RetryIn(900)),
        (21, 20, DeadLetterIt("exhausted")),
    ],
)
def test_retryable_errors(attempt: int, max_retries: int, expected: object) -> None:
    assert decide(RetryableError("429"), attempt, max_retries) == expected


@pytest.mark.parametrize(
    ("attempt", "retry_after", "expected"),
    [
        (1, 30.0, 30.0),  # longer than the backoff (1): wins
        (3, 0.5, 4.0),  # shorter than the backoff (4): ignored
        (3, 4.0, 4.0),
        (2, 2000.0, 2000.0),  # a retry_after may exceed the backoff cap
        (1, 10 * MAX_VISIBILITY_SECONDS, MAX_VISIBILITY_SECONDS),  # but not SQS's limit
        (2, None, 2.0),
    ],
)
def test_retry_after(attempt: int, retry_after: float | None, expected: float) -> None:
    error = RetryableError("Too Many Requests", retry_after=retry_after)
    assert decide(error, attempt, 5) == RetryIn(expected)


@pytest.mark.parametrize("attempt", [1, 2, 4])
def test_retry_after_does_not_outlive_exhaustion(attempt: int) -> None:
    error = RetryableError("Too Many Requests", retry_after=60.0)
    assert decide(error, attempt, attempt - 1) == DeadLetterIt("exhausted")


@pytest.mark.parametrize("attempt", [1, 3, 50])
def test_permanent_errors_dead_letter_at_once(attempt: int) -> None:
    error = PermanentError("bot is not an admin")
    assert decide(error, attempt, 3) == DeadLetterIt("permanent")
    assert decide(error, attempt, 3, drop_permanent=True) == Drop()


def test_permanent_error_dead_letters_even_with_retries_left() -> None:
    assert decide(PermanentError("chat not found"), 1, 20) == DeadLetterIt("permanent")


@pytest.mark.parametrize(
    "error", [ValueError("bug in service"), KeyError("x"), OperationError("unclassified")]
)
def test_unexpected_exceptions_are_retried(error: BaseException) -> None:
    assert decide(error, 1, 3) == RetryIn(1)
    assert decide(error, 2, 3, drop_permanent=True) == RetryIn(2)
    assert decide(error, 4, 3) == DeadLetterIt("exhausted")


def test_drop_permanent_does_not_drop_exhausted_messages() -> None:
    assert decide(RetryableError("x"), 4, 3, drop_permanent=True) == DeadLetterIt("exhausted")


def test_custom_backoff_is_used() -> None:
    backoff = Backoff(base=5.0, cap=12.0)
    assert decide(RetryableError("x"), 1, 9, backoff=backoff) == RetryIn(5.0)
    assert decide(RetryableError("x"), 3, 9, backoff=backoff) == RetryIn(12.0)


def test_jittered_decision_uses_the_given_rng() -> None:
    backoff = Backoff(jitter=0.5)
    first = decide(RetryableError("x"), 3, 5, backoff=backoff, rng=random.Random(1))
    again = decide(RetryableError("x"), 3, 5, backoff=backoff, rng=random.Random(1))
    assert first == again
    assert isinstance(first, RetryIn)
    assert 4.0 <= first.seconds <= 6.0
