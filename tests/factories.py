"""Operations and message bodies for tests, with sensible defaults: say only what matters.

    invite(user=7, sub="sub-2")          an InviteUser into CHANNEL
    remove(reason="refund")              a RemoveUser
    verify(listing="listing-7")          a VerifyPermissions
    body(invite())                       its queue message body, as the producer writes it
    body(invite(), userId="7", orderId=MISSING)   the same with wire fields changed or left out

Fake services (recording, failing, counting) are in tests/services.py, importable by worker
subprocesses as ``tests.services:Name``.
"""

from __future__ import annotations

import json
from typing import Any

from botqueue.operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions

CHANNEL = "@premium_signals"
USER = 1001
MISSING: Any = object()
"""A ``body`` change that leaves the wire field out."""


def invite(
    user: int = USER, channel: str = CHANNEL, sub: str = "sub-1", order: str = "o-1", **fields: Any
) -> InviteUser:
    """An InviteUser; ``fields`` sets any other field by its Python name (max_retries, ...)."""
    return InviteUser(
        user_id=user, channel_id=channel, subscription_id=sub, order_id=order, **fields
    )


def remove(
    user: int = USER,
    channel: str = CHANNEL,
    sub: str = "sub-1",
    reason: str = "expiry",
    **fields: Any,
) -> RemoveUser:
    """A RemoveUser; ``fields`` sets any other field by its Python name."""
    return RemoveUser(
        user_id=user, channel_id=channel, subscription_id=sub, reason=reason, **fields
    )


def verify(channel: str = CHANNEL, listing: str | None = None, **fields: Any) -> VerifyPermissions:
    """A VerifyPermissions; ``fields`` sets any other field by its Python name."""
    return VerifyPermissions(channel_id=channel, listing_id=listing, **fields)


def body(op: AnyOperation, **changes: Any) -> str:
    """The operation's queue message body as the producer sends it, with wire (camelCase)
    fields changed or, given MISSING, left out: for bodies a producer would never send."""
    fields = {**json.loads(op.to_json()), **changes}
    return json.dumps({name: value for name, value in fields.items() if value is not MISSING})
