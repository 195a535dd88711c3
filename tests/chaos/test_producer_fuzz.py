"""Producer arguments fuzzed (issue 12, point 4): every invalid combination raises
OperationValidationError naming exactly the invalid fields, and nothing is sent; every valid
one is sent once, and its body decodes back to the arguments. The oracle below restates the
rules independently of the models."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from botqueue import BotQueueProducer
from botqueue.errors import OperationValidationError
from botqueue.operations import decode_operation
from botqueue.transports import OutgoingMessage, SendResult, SqliteTransport

_CHANNEL = re.compile(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-?[1-9][0-9]{0,18}")
_KEY = re.compile(r"[!-~]{1,128}")
REASONS = ("expiry", "refund", "cancellation")


class RecordingTransport:
    """Sends nothing anywhere: records each message and answers with an id."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMessage] = []

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Record the batch."""
        self.sent += messages
        return [SendResult(message_id=f"m{len(self.sent) - i}") for i in range(len(messages))]

    async def aclose(self) -> None:
        """Nothing to close."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object, longest: int = 256) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= longest


# The oracle: wire name -> whether a value is valid.
RULES: dict[str, Any] = {
    "userId": lambda v: _is_int(v) and v > 0,
    "channelId": lambda v: (_is_int(v) or isinstance(v, str)) and bool(_CHANNEL.fullmatch(str(v))),
    "subscriptionId": _text,
    "orderId": _text,
    "reason": lambda v: isinstance(v, str) and v in REASONS,
    "maxRetries": lambda v: _is_int(v) and 0 <= v <= 20,
    "listingId": lambda v: v is None or _text(v),
}

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=300),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
GOOD = {
    "userId": st.integers(1, 2**63),
    "channelId": st.from_regex(_CHANNEL, fullmatch=True) | st.integers(-(10**18), 10**18),
    "subscriptionId": st.text(min_size=1, max_size=256),
    "orderId": st.text(min_size=1, max_size=256),
    "reason": st.sampled_from(REASONS),
    "maxRetries": st.integers(0, 20),
    "listingId": st.none() | st.text(min_size=1, max_size=256),
}
NEAR = {
    "userId": st.sampled_from([0, -1, True, 1.0, "5"]),
    "channelId": st.sampled_from(["", "@abc", "abc", "-0", "0", 0, "1" * 20, "@a-bcde", True]),
    "subscriptionId": st.sampled_from(["", "x" * 257, 5, None]),
    "orderId": st.sampled_from(["", "x" * 257, 5, None]),
    "reason": st.sampled_from(["Expiry", "", "ban", None]),
    "maxRetries": st.sampled_from([-1, 21, True, 3.0, "3", None]),
    "listingId": st.sampled_from(["", "x" * 257, 5]),
}
GOOD_KEYS = st.none() | st.from_regex(_KEY, fullmatch=True)
KEYS = GOOD_KEYS | st.text(max_size=130)
METHODS = {
    "enqueue_invite_user": ("userId", "channelId", "subscriptionId", "orderId", "maxRetries"),
    "enqueue_remove_user": ("userId", "channelId", "subscriptionId", "reason", "maxRetries"),
    "enqueue_verify_permissions": ("channelId", "listingId", "maxRetries"),
}


def value_of(name: str) -> st.SearchStrategy[Any]:
    """A valid value half the time, else a near miss or anything at all."""
    return st.one_of(GOOD[name], GOOD[name], NEAR[name], ANYTHING)


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, list[Any], str | None]:
    """A method, its positional arguments and an idempotency key."""
    method = draw(st.sampled_from(sorted(METHODS)))
    if draw(st.booleans()):  # half the calls valid, the rest mostly with some field wrong
        return method, [draw(GOOD[name]) for name in METHODS[method]], draw(GOOD_KEYS)
    return method, [draw(value_of(name)) for name in METHODS[method]], draw(KEYS)


def expected_invalid(method: str, args: list[Any], key: str | None) -> set[str]:
    """The fields the producer must name (the key is checked once the operation is valid)."""
    bad = {n for n, v in zip(METHODS[method], args, strict=True) if not RULES[n](v)}
    if not bad and key is not None and not _KEY.fullmatch(key):
        bad = {"idempotencyKey"}
    return bad


async def call(producer: BotQueueProducer, method: str, args: list[Any], key: str | None) -> str:
    """Call a producer method with the arguments."""
    result: str = await getattr(producer, method)(*args, idempotency_key=key)
    return result


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls())
def test_invalid_arguments_are_named_and_nothing_is_sent(
    drawn: tuple[str, list[Any], str | None],
) -> None:
    method, args, key = drawn
    transport = RecordingTransport()
    producer = BotQueueProducer(transport)  # type: ignore[arg-type]
    bad = expected_invalid(method, args, key)
    event("invalid" if bad else "valid")
    if bad:
        with pytest.raises(OperationValidationError) as raised:
            asyncio.run(call(producer, method, args, key))
        assert set(raised.value.errors) == bad, (raised.value.errors, args)
        assert transport.sent == []
        return
    asyncio.run(call(producer, method, args, key))
    (message,) = transport.sent
    op = decode_operation(message.body)
    fields = op.model_dump(by_alias=True)
    for name, value in zip(METHODS[method], args, strict=True):
        assert fields[name] == (str(value) if name == "channelId" else value)
    assert message.deduplication_id == (key or op.deduplication_id())
    assert message.group_id == op.group_id


async def test_the_embedded_queue_stays_empty_after_invalid_calls(tmp_path: Path) -> None:
    async with SqliteTransport(f"sqlite:///{tmp_path / 'q.db'}") as transport:
        producer = BotQueueProducer(transport)
        for method, args, key in [
            ("enqueue_invite_user", [0, "-1001", "s", "o", 3], None),
            ("enqueue_remove_user", [1, "-1001", "s", "ban", 3], None),
            ("enqueue_verify_permissions", ["@ab", None, 3], None),
            ("enqueue_verify_permissions", ["-1001", None, 21], None),
            ("enqueue_verify_permissions", ["-1001", None, 3], "not a key"),
        ]:
            with pytest.raises(OperationValidationError):
                await call(producer, method, args, key)
        assert (await transport.stats()).visible == 0
        await call(producer, "enqueue_verify_permissions", ["-1001", None, 3], None)
        assert (await transport.stats()).visible == 1
