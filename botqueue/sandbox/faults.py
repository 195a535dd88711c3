"""Fault injection (errors, latency, hung calls) and Telegram-style flood control.

Method names are matched case-insensitively; ``"*"`` stands for every method. A rule for a
named method is used before a ``"*"`` rule.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .errors import ApiError, known_code, too_many_requests

ANY_METHOD = "*"
"""The method name that makes a fault, latency or hang rule apply to every method."""

_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: sandbox fault",
    401: "Unauthorized",
    403: "Forbidden: sandbox fault",
    404: "Not Found",
    409: "Conflict: sandbox fault",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class Fault:
    """An error the next ``count`` calls of a method answer with."""

    error_code: int
    description: str
    count: int
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None

    def error(self) -> ApiError:
        """The error to answer with."""
        return ApiError(
            self.description,
            code=self.error_code,
            retry_after=self.retry_after,
            migrate_to_chat_id=self.migrate_to_chat_id,
        )


def _checked_code(error_code: int | None, description: str | None) -> int:
    paired = None if description is None else known_code(description)
    if error_code is None:
        if description is None:
            raise ValueError("error_code or description is required")
        if paired is None:
            raise ValueError(f"no known code for {description!r}; give error_code")
        return paired
    if not 400 <= error_code <= 599:
        raise ValueError("error_code must be an HTTP error status (400-599)")
    # Server errors come from proxies too, with any body; a 4xx prefix always has its code.
    if paired is not None and paired < 500 and paired != error_code:
        prefix = str(description).partition(":")[0]
        raise ValueError(
            f"error_code {error_code} does not match {prefix!r}, which Telegram sends with {paired}"
        )
    return error_code


def make_fault(
    error_code: int | None,
    description: str | None = None,
    count: int = 1,
    retry_after: int | None = None,
    migrate_to_chat_id: int | None = None,
) -> Fault:
    """A fault; the code follows from a description's prefix when not given, and a missing
    description is Telegram's usual one for the code.

    Telegram always pairs a client-error prefix with its code ("Bad Request" 400, "Forbidden"
    403, ...), so a code that contradicts one is refused.
    """
    error_code = _checked_code(error_code, description)
    if count < 1:
        raise ValueError("count must be at least 1")
    if error_code == 429 and retry_after is None:
        retry_after = 1
    if description is None:
        description = (
            too_many_requests(retry_after or 1)
            if error_code == 429
            else _DEFAULT_DESCRIPTIONS.get(error_code, f"Error {error_code}")
        )
    return Fault(error_code, description, count, retry_after, migrate_to_chat_id)


@dataclass(frozen=True)
class Latency:
    """An injected round trip: ``request_share`` of it before the checks, the rest after.

    Each leg is jittered on its own, uniformly within ``± jitter`` of its length, per call.
    """

    seconds: float
    jitter: float = 0.0
    request_share: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError("seconds must be a finite number >= 0")
        for name in ("jitter", "request_share"):
            if not 0 <= getattr(self, name) <= 1:  # also refuses nan
                raise ValueError(f"{name} must be between 0 and 1")

    def legs(self, rng: random.Random) -> tuple[float, float]:
        """Seconds of one call's request leg (before the flood check) and answer leg."""
        request = self.seconds * self.request_share
        answer = self.seconds - request
        return (
            request * (1 + rng.uniform(-self.jitter, self.jitter)),
            answer * (1 + rng.uniform(-self.jitter, self.jitter)),
        )


class FaultPlan:
    """The faults, latencies and hangs waiting for calls."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.faults: dict[str, deque[Fault]] = {}
        self.latency: dict[str, Latency] = {}
        self.hangs: dict[str, int] = {}
        self._rng = rng or random.Random()

    def clear(self) -> None:
        """Forget every rule."""
        self.faults.clear()
        self.latency.clear()
        self.hangs.clear()

    def add_fault(self, method: str, fault: Fault) -> None:
        """Queue a fault behind any already waiting for that method."""
        self.faults.setdefault(method.lower(), deque()).append(fault)

    def set_latency(
        self, method: str, seconds: float, *, jitter: float = 0.0, request_share: float = 0.0
    ) -> None:
        """Delay every call of a method by ``seconds`` ± ``jitter`` (a fraction of it), with
        ``request_share`` of it before the flood check and the rest before the answer; 0
        removes the delay."""
        latency = Latency(seconds, jitter, request_share)
        if seconds:
            self.latency[method.lower()] = latency
        else:
            self.latency.pop(method.lower(), None)

    def add_hang(self, method: str, count: int) -> None:
        """Make the next ``count`` calls of a method never answer (0 cancels)."""
        if count < 0:
            raise ValueError("count must not be negative")
        if count:
            self.hangs[method.lower()] = count
        else:
            self.hangs.pop(method.lower(), None)

    @staticmethod
    def _rule_key(rules: Mapping[str, object], method: str) -> str | None:
        for key in (method.lower(), ANY_METHOD):
            if key in rules:
                return key
        return None

    def take_fault(self, method: str) -> ApiError | None:
        """The error this call must answer, using up one count of the fault."""
        key = self._rule_key(self.faults, method)
        if key is None:
            return None
        queue = self.faults[key]
        fault = queue[0]
        fault.count -= 1
        if fault.count <= 0:
            queue.popleft()
            if not queue:
                del self.faults[key]
        return fault.error()

    def take_hang(self, method: str) -> bool:
        """Whether this call must hang, using up one count."""
        key = self._rule_key(self.hangs, method)
        if key is None:
            return False
        self.hangs[key] -= 1
        if self.hangs[key] <= 0:
            del self.hangs[key]
        return True

    def legs(self, method: str) -> tuple[float, float]:
        """Seconds this call waits before the flood check, and before the method runs."""
        key = self._rule_key(self.latency, method)
        return (0.0, 0.0) if key is None else self.latency[key].legs(self._rng)


class FloodControl:
    """At most ``rate`` calls per token in any one-second window (a strict sliding window)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate: int | None = None
        self._clock = clock
        self._windows: dict[str, deque[float]] = {}

    def set_rate(self, rate: int | None) -> None:
        """Set calls per second per token; None switches flood control off."""
        if rate is not None and rate < 1:
            raise ValueError("rate_per_second must be at least 1, or null")
        self.rate = rate
        self._windows.clear()

    def admit(self, token: str) -> int | None:
        """None if the call may go ahead (and is counted), else the seconds to wait."""
        if self.rate is None:
            return None
        now = self._clock()
        window = self._windows.setdefault(token, deque())
        while window and window[0] <= now - 1.0:
            window.popleft()
        if len(window) < self.rate:
            window.append(now)
            return None
        return max(1, math.ceil(window[0] + 1.0 - now))
