"""The receive loop's view of a failing queue: a capped retry interval, logged per outage."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

log = structlog.get_logger("botqueue.consumer")

RECEIVE_RETRY_CAP_SECONDS = 2.0
"""The longest wait between two receives while the queue fails. A queue back from an outage
is polled again within this (plus at most one SQS retry of up to 1 s; see docs/sqs.md)."""
RECEIVE_RETRY_FIRST_SECONDS = 0.25
"""The wait after the first failed receive; it doubles up to the cap."""


class ReceiveOutage:
    """Counts consecutive failed receives; logs once when the queue becomes unavailable and
    once when it answers again, never per attempt (an hour-long outage is two lines)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.failures = 0
        self._since = 0.0
        self._clock = clock

    @property
    def unavailable(self) -> bool:
        """Whether the latest receive failed."""
        return self.failures > 0

    def failed(self, error: BaseException) -> float:
        """Record a failed receive; return the seconds to wait before the next one."""
        self.failures += 1
        if self.failures == 1:
            self._since = self._clock()
            log.warning(
                "queue unavailable, retrying receives",
                error=repr(error),
                retryAtMostEverySeconds=RECEIVE_RETRY_CAP_SECONDS,
            )
        else:
            log.debug("receive failed again", error=repr(error), failures=self.failures)
        exponent = min(self.failures - 1, 16)
        return min(RECEIVE_RETRY_FIRST_SECONDS * 2.0**exponent, RECEIVE_RETRY_CAP_SECONDS)

    def succeeded(self) -> None:
        """Record a receive that worked; logs the recovery if the queue had been failing."""
        if self.failures:
            log.info(
                "queue available again",
                failedReceives=self.failures,
                unavailableSeconds=round(self._clock() - self._since, 1),
            )
        self.failures = 0
