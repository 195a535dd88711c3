"""What the benchmarks share: a bot service that only counts its calls."""

from __future__ import annotations

import asyncio
import time

from botqueue import InviteUser, Outcome, RemoveUser, VerifyPermissions


class CountingService:
    """A bot service that succeeds at once (or after ``seconds``, a stand-in for the Bot API's
    latency), counts its calls, notes when the last one finished, and sets ``done`` once
    ``total`` calls have been made."""

    def __init__(self, seconds: float = 0.0, total: int | None = None) -> None:
        self.seconds = seconds
        self.total = total
        self.calls = 0
        self.last_call = 0.0
        self.done = asyncio.Event()

    async def _call(self) -> Outcome:
        if self.seconds:
            await asyncio.sleep(self.seconds)
        self.calls += 1
        self.last_call = time.perf_counter()
        if self.total is not None and self.calls >= self.total:
            self.done.set()
        return Outcome()

    async def invite_user(self, op: InviteUser) -> Outcome:
        """Count the call."""
        return await self._call()

    async def remove_user(self, op: RemoveUser) -> Outcome:
        """Count the call."""
        return await self._call()

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome:
        """Count the call."""
        return await self._call()
