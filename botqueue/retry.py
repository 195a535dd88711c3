"""The retry decision: a pure function from (error, attempt, max retries) to what happens next."""

from __future__ import annotations

import random
from dataclasses import dataclass

from .errors import PermanentError, RetryableError
from .failure import FailureKind

MAX_BACKOFF_SECONDS = 900.0
"""15 minutes: the spec's cap, and also the longest delay SQS allows for a message."""
MAX_VISIBILITY_SECONDS = 12 * 3600.0
"""SQS's longest visibility timeout; a retry_after beyond it is clamped."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: ``base * 2**(attempt-1)`` seconds, capped, with optional jitter."""

    base: float = 1.0
    cap: float = MAX_BACKOFF_SECONDS
    jitter: float = 0.0
    """Fraction of the delay added at random (0.1 = up to 10% more), to spread retries."""

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1 = the first)."""
        exponent = min(max(attempt - 1, 0), 32)
        delay: float = min(self.base * float(2**exponent), self.cap)
        if self.jitter > 0:
            delay += delay * self.jitter * (rng or random).random()
        return min(delay, self.cap)


@dataclass(frozen=True, slots=True)
class RetryIn:
    """Make the message visible again after ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class DeadLetterIt:
    """Write the message to the DLQ with this kind of failure."""

    kind: FailureKind


@dataclass(frozen=True, slots=True)
class Drop:
    """Delete the message without a dead letter (the spec's delete-on-permanent setting)."""


Decision = RetryIn | DeadLetterIt | Drop


def decide(
    error: BaseException,
    attempt: int,
    max_retries: int,
    *,
    backoff: Backoff = Backoff(),
    drop_permanent: bool = False,
    rng: random.Random | None = None,
) -> Decision:
    """Decide what to do with a message whose attempt number ``attempt`` raised ``error``.

    A permanent error is dead-lettered at once (or dropped, if asked). Anything else, including
    an unexpected exception from a service, is retried until the attempts exceed
    ``max_retries``; the delay is the backoff or the error's ``retry_after``, whichever is longer.
    """
    if isinstance(error, PermanentError):
        return Drop() if drop_permanent else DeadLetterIt("permanent")
    if attempt > max_retries:
        return DeadLetterIt("exhausted")
    delay = backoff.delay(attempt, rng)
    if isinstance(error, RetryableError) and error.retry_after is not None:
        delay = max(delay, min(error.retry_after, MAX_VISIBILITY_SECONDS))
    return RetryIn(delay)
