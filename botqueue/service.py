"""The service interface the consumer calls, and what it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from .operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions

OutcomeStatus = Literal["succeeded", "noop"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a finished operation did: ``succeeded``, or ``noop`` when nothing was needed."""

    status: OutcomeStatus = "succeeded"
    detail: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class BotService(Protocol):
    """Performs operations; raises RetryableError or PermanentError when it cannot.

    Returning ``None`` is a plain success (``Outcome()``).
    """

    async def invite_user(self, op: InviteUser) -> Outcome | None:
        """Let the user into the channel."""
        ...

    async def remove_user(self, op: RemoveUser) -> Outcome | None:
        """Take the user out of the channel."""
        ...

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome | None:
        """Check the bot's rights in the channel."""
        ...


async def dispatch(service: BotService, op: AnyOperation) -> Outcome | None:
    """Call the service method that performs ``op``."""
    if isinstance(op, InviteUser):
        return await service.invite_user(op)
    if isinstance(op, RemoveUser):
        return await service.remove_user(op)
    return await service.verify_permissions(op)
