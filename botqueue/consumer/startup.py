"""Starting the service through a Telegram blip, and stopping the worker by signal at any time.

Telegram answers 502 or times out now and then, for seconds or minutes; a worker started by
an orchestrator at that moment must wait it out instead of exiting and being restarted in a
loop. Only an answer that no retry can change (the token rejected: 401 or 404) stops it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Coroutine
from typing import Any

import structlog

from ..errors import ConfigurationError, FatalError, RetryableError
from ..retry import Backoff
from ..service import Lifecycle
from .waits import first_of

log = structlog.get_logger("botqueue.worker")

START_BACKOFF = Backoff(base=1.0, cap=30.0)
"""Between start-up tries: 1, 2, 4 ... s, at most 30 s."""
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    """SIGTERM and SIGINT for a whole worker run, from start-up to the end of consuming.

    ``requested`` is set by the first signal; each callback in ``on_stop`` (the consumer's
    graceful stop, once it exists) runs once, as soon as both a signal and it are there.
    """

    def __init__(self, on_signal: Callable[[signal.Signals], None] | None = None) -> None:
        self.requested = asyncio.Event()
        self._on_signal = on_signal
        self._stop: Callable[[], Coroutine[Any, Any, None]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    def install(self) -> None:
        """Handle SIGTERM and SIGINT on the running loop."""
        for signum in _SIGNALS:
            self._loop.add_signal_handler(signum, self._signalled, signum)

    def uninstall(self) -> None:
        """Restore the default handling."""
        for signum in _SIGNALS:
            self._loop.remove_signal_handler(signum)

    def _signalled(self, signum: signal.Signals) -> None:
        if self._on_signal is not None:
            self._on_signal(signum)
        self.requested.set()
        self._start_stopping()

    def when_stopped(self, stop: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run ``stop()`` on the first signal (at once if one already came)."""
        self._stop = stop
        self._start_stopping()

    def _start_stopping(self) -> None:
        if self.requested.is_set() and self._stop is not None and self._task is None:
            self._task = self._loop.create_task(self._stop())

    async def stopped(self) -> None:
        """Wait for the stop a signal started, if any."""
        if self._task is not None:
            await self._task


async def start_service(
    lifecycle: Lifecycle,
    stop: asyncio.Event | None = None,
    *,
    backoff: Backoff = START_BACKOFF,
) -> bool:
    """Call the service's declared ``start()`` until it succeeds; False if ``stop`` came first.

    A retryable failure (5xx, timeout, refused connection, 429) is logged and tried again
    after ``backoff`` (or Telegram's retry_after when longer).

    Raises:
        ConfigurationError: the service refused for good (e.g. the bot token was rejected).
    """
    start = lifecycle.start
    if start is None:
        return True
    stop = stop or asyncio.Event()
    attempt = 0
    while True:
        try:
            if not await first_of(start(), stop):
                return False
            if attempt:
                log.info("service started", attempts=attempt + 1)
            return True
        except FatalError as error:
            raise ConfigurationError(f"TELEGRAM_BOT_TOKEN: {error}") from None
        except RetryableError as error:
            attempt += 1
            delay = max(backoff.delay(attempt), error.retry_after or 0.0)
            log.warning(
                "service could not start, retrying",
                error=str(error),
                attempt=attempt,
                retryInSeconds=round(delay, 3),
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return False
