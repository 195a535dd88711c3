"""BotService implementations for tests, importable by worker subprocesses as tests.services:X.

Operations to feed them are in tests/factories.py; a Telegram service over prepared Bot API
answers is tests/mocked_bot.py's.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

from botqueue.errors import RetryableError
from botqueue.operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions
from botqueue.service import Outcome


def key(op: AnyOperation) -> str:
    """A readable identity: the subscription id, or channel/listing for verify."""
    if isinstance(op, VerifyPermissions):
        return f"verify:{op.channel_id}:{op.listing_id}"
    return op.subscription_id


class RecordingService:
    """Records every call in order; ``behaviour`` may raise or sleep per operation."""

    def __init__(
        self, behaviour: Callable[[AnyOperation, int], object] | None = None, delay: float = 0.0
    ) -> None:
        self.calls: list[str] = []
        self.behaviour = behaviour
        self.delay = delay
        self.running = 0
        self.max_running = 0
        self.running_groups: set[str] = set()
        self.group_overlap = False
        self.started = asyncio.Event()

    async def _do(self, op: AnyOperation) -> Outcome:
        self.calls.append(key(op))
        self.started.set()
        group = op.group_id
        if group in self.running_groups:
            self.group_overlap = True
        self.running_groups.add(group)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.behaviour is not None:
                self.behaviour(op, self.calls.count(key(op)))
            return Outcome()
        finally:
            self.running -= 1
            self.running_groups.discard(group)

    async def invite_user(self, op: InviteUser) -> Outcome:
        """Record and perform the behaviour."""
        return await self._do(op)

    async def remove_user(self, op: RemoveUser) -> Outcome:
        """Record and perform the behaviour."""
        return await self._do(op)

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome:
        """Record and perform the behaviour."""
        return await self._do(op)


class CountingService:
    """Succeeds at once and counts; sets ``done`` once ``total`` operations were performed."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.calls = 0
        self.done = asyncio.Event()

    async def _count(self, op: AnyOperation) -> Outcome:
        self.calls += 1
        if self.calls >= self.total:
            self.done.set()
        return Outcome()

    invite_user = remove_user = verify_permissions = _count


def fail_times(
    target: str, times: int, error: type[Exception] = RetryableError
) -> Callable[[AnyOperation, int], object]:
    """A behaviour that raises ``error`` for the first ``times`` calls of one operation."""

    def behaviour(op: AnyOperation, call_number: int) -> None:
        if key(op) == target and call_number <= times:
            raise error(f"simulated failure {call_number} of {target}")

    return behaviour


def always(error: Exception) -> Callable[[AnyOperation, int], object]:
    """A behaviour that always raises ``error``."""

    def behaviour(op: AnyOperation, call_number: int) -> None:
        raise error

    return behaviour


class FileCountingService:
    """For worker subprocesses: appends each operation's key to $BOTQUEUE_TEST_LOG, after
    sleeping $BOTQUEUE_TEST_DELAY seconds."""

    def __init__(self) -> None:
        self.path = os.environ["BOTQUEUE_TEST_LOG"]
        self.delay = float(os.environ.get("BOTQUEUE_TEST_DELAY", "0"))

    async def _do(self, op: AnyOperation) -> Outcome:
        if self.delay:
            await asyncio.sleep(self.delay)
        # A blocking append is fine in a test service: it is tiny and local.
        with open(self.path, "a") as log:  # noqa: ASYNC230
            log.write(key(op) + "\n")
        return Outcome()

    async def invite_user(self, op: InviteUser) -> Outcome:
        """Count the call."""
        return await self._do(op)

    async def remove_user(self, op: RemoveUser) -> Outcome:
        """Count the call."""
        return await self._do(op)

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome:
        """Count the call."""
        return await self._do(op)
