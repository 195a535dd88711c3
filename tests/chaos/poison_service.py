"""The poison scenario's service: the real Telegram service, except for two users.

``botqueue worker --service tests.chaos.poison_service:service`` loads it (the loader calls
the factory with no arguments; the worker runs in the project root). Every operation goes to
the Telegram service the TELEGRAM_* settings configure, as the worker's own would, except that
operations of ``RAISING_USER`` raise an exception no service expects and those of
``HANGING_USER`` never return: only the operation timeout (BOTQUEUE_OPERATION_TIMEOUT) ends
them.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botqueue.config import load_settings
from botqueue.operations import InviteUser, RemoveUser, VerifyPermissions
from botqueue.service import Outcome
from botqueue.telegram.service import TelegramBotService

RAISING_USER = 900_001
"""Every operation of this user raises ZeroDivisionError (a bug for this user only)."""
HANGING_USER = 900_002
"""Every operation of this user hangs until the operation timeout cancels it."""


class PoisonedService:
    """Delegates to the Telegram service; raises or hangs for the poisoned users."""

    def __init__(self, inner: TelegramBotService) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        # start, aclose, bot_state, add_request_observer, flood_stats: the worker's observability
        # and its bot-wide pauses see the real service.
        return getattr(self.inner, name)

    async def _poisoned(self, user_id: int) -> None:
        if user_id == RAISING_USER:
            raise ZeroDivisionError(f"a bug that only user {user_id} meets")
        if user_id == HANGING_USER:
            await asyncio.Event().wait()  # never set: only the operation timeout ends it

    async def invite_user(self, op: InviteUser) -> Outcome:
        """The real invite, unless the user is poisoned."""
        await self._poisoned(op.user_id)
        return await self.inner.invite_user(op)

    async def remove_user(self, op: RemoveUser) -> Outcome:
        """The real removal, unless the user is poisoned."""
        await self._poisoned(op.user_id)
        return await self.inner.remove_user(op)

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome:
        """The real verification (no user to poison)."""
        return await self.inner.verify_permissions(op)


def service() -> PoisonedService:
    """The factory the worker's loader calls: the configured Telegram service, poisoned."""
    return PoisonedService(TelegramBotService.from_settings(load_settings()))
