"""Operations and message bodies for tests, with sensible defaults: say only what matters.

    invite()                             Dan (1004) invited into premium_signals
    invite(7, "sub-2")                   user 7, subscription sub-2
    remove(1002, reason="refund")        a RemoveUser
    verify("listing-7")                  a VerifyPermissions of premium_signals
    body(invite())                       its queue message body, as the producer writes it
    body(invite(), userId="7", orderId=MISSING)   the same with wire fields changed or left out

The defaults are the sandbox's default world (botqueue/sandbox/world.py), so a test against
the sandbox needs no more than a unit test does. Fake services (recording, failing, counting)
are in tests/services.py, importable by worker subprocesses as ``tests.services:Name``.
"""

from __future__ import annotations

import json
from typing import Any

from botqueue.operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions

# The sandbox's default world.
PREMIUM = "-1001000000001"
"""premium_signals: the bot may invite and restrict; Ann, Ben and Cara (1001-1003) are in."""
DAN = 1004
"""Started the bot, in no channel."""

MISSING: Any = object()
"""A ``body`` change that leaves the wire field out."""


def invite(
    user: int = DAN,
    sub: str = "sub-1",
    *,
    channel: str = PREMIUM,
    order: str = "o-1",
    **fields: Any,
) -> InviteUser:
    """An InviteUser; ``fields`` sets any other field by its Python name (max_retries, ...)."""
    return InviteUser(
        user_id=user, channel_id=channel, subscription_id=sub, order_id=order, **fields
    )


def remove(
    user: int = DAN,
    sub: str = "sub-1",
    *,
    channel: str = PREMIUM,
    reason: str = "expiry",
    **fields: Any,
) -> RemoveUser:
    """A RemoveUser; ``fields`` sets any other field by its Python name."""
    return RemoveUser(
        user_id=user, channel_id=channel, subscription_id=sub, reason=reason, **fields
    )


def verify(
    listing: str | None = None, *, channel: str = PREMIUM, **fields: Any
) -> VerifyPermissions:
    """A VerifyPermissions; ``fields`` sets any other field by its Python name."""
    return VerifyPermissions(channel_id=channel, listing_id=listing, **fields)


def body(op: AnyOperation, **changes: Any) -> str:
    """The operation's queue message body as the producer sends it, with wire (camelCase)
    fields changed or, given MISSING, left out: for bodies a producer would never send."""
    fields = {**json.loads(op.to_json()), **changes}
    return json.dumps({name: value for name, value in fields.items() if value is not MISSING})
