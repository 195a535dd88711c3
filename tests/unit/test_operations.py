"""The three operations: wire format key for key, validation, group and deduplication ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botqueue import (
    DecodeError,
    InviteUser,
    OperationValidationError,
    RemoveUser,
    VerifyPermissions,
)
from botqueue.operations import build_operation, decode_operation

WHEN = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
INVITE = InviteUser(
    user_id=5, channel_id="@somechan", subscription_id="sub-1", order_id="ord-1", timestamp=WHEN
)
REMOVE = RemoveUser(
    user_id=5, channel_id="-1001234567890", subscription_id="sub-1", reason="refund", timestamp=WHEN
)
VERIFY = VerifyPermissions(channel_id="@somechan", listing_id="lst-1", timestamp=WHEN)
VERIFY_BARE = VerifyPermissions(channel_id="@somechan", timestamp=WHEN)
COMMON = {"timestamp": "2024-05-01T10:00:00.000Z", "attemptCount": 0, "maxRetries": 3}
# Bodies as a TypeScript producer following the spec would write them, plus a key we don't know.
HAND_WRITTEN = {
    "INVITE_USER": {
        "operationType": "INVITE_USER", "userId": 5, "channelId": "@somechan",
        "subscriptionId": "sub-1", "orderId": "ord-1", **COMMON, "traceId": "t-1",
    },
    "REMOVE_USER": {
        "operationType": "REMOVE_USER", "userId": 5, "channelId": "-1001234567890",
        "subscriptionId": "sub-1", "reason": "refund", **COMMON, "traceId": "t-1",
    },
    "VERIFY_PERMISSIONS": {
        "operationType": "VERIFY_PERMISSIONS", "channelId": "@somechan", "listingId": "lst-1",
        **COMMON, "traceId": "t-1",
    },
}  # fmt: skip
EXPECTED = {"INVITE_USER": INVITE, "REMOVE_USER": REMOVE, "VERIFY_PERMISSIONS": VERIFY}
SPEC_KEYS = {
    INVITE: {"operationType", "userId", "channelId", "subscriptionId", "orderId"},
    REMOVE: {"operationType", "userId", "channelId", "subscriptionId", "reason"},
    VERIFY: {"operationType", "channelId", "listingId"},
    VERIFY_BARE: {"operationType", "channelId"},
}


@pytest.mark.parametrize("op", [INVITE, REMOVE, VERIFY, VERIFY_BARE], ids=repr)
def test_round_trip(op: Any) -> None:
    decoded = decode_operation(op.to_json())
    assert decoded == op
    assert type(decoded) is type(op)


@pytest.mark.parametrize("operation_type", sorted(HAND_WRITTEN))
def test_decodes_spec_shaped_body_and_ignores_unknown_keys(operation_type: str) -> None:
    body = json.dumps(HAND_WRITTEN[operation_type])
    assert decode_operation(body) == EXPECTED[operation_type]
    assert decode_operation(body.encode()) == EXPECTED[operation_type]


@pytest.mark.parametrize("op", list(SPEC_KEYS), ids=repr)
def test_encoded_keys_are_the_specs(op: Any) -> None:
    encoded = json.loads(op.to_json())
    assert set(encoded) == SPEC_KEYS[op] | {"timestamp", "attemptCount", "maxRetries"}
    assert encoded["operationType"] == op.operation_type
    assert encoded["timestamp"] == "2024-05-01T10:00:00.000Z"
    assert (encoded["attemptCount"], encoded["maxRetries"]) == (0, 3)


def test_timestamp_is_encoded_in_utc_with_z() -> None:
    local = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    encoded = json.loads(INVITE.model_copy(update={"timestamp": local}).to_json())
    assert encoded["timestamp"] == "2024-05-01T10:30:15.123Z"
    assert datetime.fromisoformat(encoded["timestamp"]) == local.replace(microsecond=123000)


class _MicrosecondClock(datetime):
    """datetime whose now() has a sub-millisecond part, as almost every real now() does."""

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=tz)


def test_default_timestamp_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botqueue.operations.datetime", _MicrosecondClock)
    op = InviteUser(user_id=5, channel_id="@somechan", subscription_id="s", order_id="o")
    assert decode_operation(op.to_json()) == op


@pytest.mark.parametrize("channel", ["@somechan\n", "-1001234567890\n"])
def test_channel_id_with_trailing_newline_is_rejected(channel: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_operation(_body("VERIFY_PERMISSIONS", channelId=channel))
    assert "channelId" in caught.value.errors


def _body(operation_type: str, **changes: Any) -> str:
    fields = {**HAND_WRITTEN[operation_type], **changes}
    return json.dumps({k: v for k, v in fields.items() if v is not _MISSING})


_MISSING = object()
INVALID = [
    ("INVITE_USER", {"userId": "123"}, "userId"),
    ("INVITE_USER", {"maxRetries": "3"}, "maxRetries"),
    ("INVITE_USER", {"channelId": 1001234}, "channelId"),
    ("INVITE_USER", {"userId": _MISSING}, "userId"),
    ("INVITE_USER", {"orderId": _MISSING}, "orderId"),
    ("INVITE_USER", {"subscriptionId": _MISSING}, "subscriptionId"),
    ("REMOVE_USER", {"reason": _MISSING}, "reason"),
    ("VERIFY_PERMISSIONS", {"channelId": _MISSING}, "channelId"),
    ("INVITE_USER", {"operationType": _MISSING}, "operationType"),
    ("INVITE_USER", {"operationType": "BAN_USER"}, "operationType"),
    ("REMOVE_USER", {"reason": "bogus"}, "reason"),
    ("REMOVE_USER", {"reason": "Expiry"}, "reason"),
    ("INVITE_USER", {"maxRetries": -1}, "maxRetries"),
    ("INVITE_USER", {"maxRetries": 21}, "maxRetries"),
    ("VERIFY_PERMISSIONS", {"channelId": "chan"}, "channelId"),
    ("VERIFY_PERMISSIONS", {"channelId": "@ab"}, "channelId"),
    ("VERIFY_PERMISSIONS", {"channelId": "12abc"}, "channelId"),
    ("INVITE_USER", {"userId": 0}, "userId"),
    ("INVITE_USER", {"userId": -5}, "userId"),
    ("INVITE_USER", {"userId": True}, "userId"),
    ("INVITE_USER", {"attemptCount": -1}, "attemptCount"),
    ("INVITE_USER", {"timestamp": "2024-05-01T10:00:00"}, "timestamp"),
    ("INVITE_USER", {"timestamp": "yesterday"}, "timestamp"),
]


@pytest.mark.parametrize(("operation_type", "changes", "field"), INVALID)
def test_decode_names_the_invalid_field(
    operation_type: str, changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_operation(_body(operation_type, **changes))
    assert field in caught.value.errors
    assert field in str(caught.value)


@pytest.mark.parametrize(("operation_type", "changes", "field"), INVALID)
def test_build_names_the_invalid_field(
    operation_type: str, changes: dict[str, Any], field: str
) -> None:
    fields = json.loads(_body(operation_type, **changes))
    with pytest.raises(OperationValidationError) as caught:
        build_operation(fields)
    assert not isinstance(caught.value, DecodeError)
    assert field in caught.value.errors


@pytest.mark.parametrize("body", ["not json", "", "[1, 2, 3]", '"INVITE_USER"', "42", "null"])
def test_non_object_bodies_are_decode_errors(body: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_operation(body)
    assert list(caught.value.errors) == ["body"]


@pytest.mark.parametrize("max_retries", [0, 20])
def test_max_retries_bounds_are_accepted(max_retries: int) -> None:
    op = decode_operation(_body("INVITE_USER", maxRetries=max_retries))
    assert op.max_retries == max_retries


@pytest.mark.parametrize("channel", ["@abcd", "@some_chan_1", "-1001234567890", "42"])
def test_valid_channel_ids(channel: str) -> None:
    assert decode_operation(_body("VERIFY_PERMISSIONS", channelId=channel)).channel_id == channel


def test_group_ids() -> None:
    assert INVITE.group_id == "@somechan:5"
    assert REMOVE.group_id == "-1001234567890:5"
    assert VERIFY.group_id == "@somechan"
    assert VERIFY_BARE.group_id == VERIFY.group_id


@pytest.mark.parametrize("op", [INVITE, REMOVE, VERIFY, VERIFY_BARE], ids=repr)
def test_dedup_id_ignores_timestamp_and_fits_sqs(op: Any) -> None:
    later = op.model_copy(update={"timestamp": WHEN + timedelta(hours=1), "attempt_count": 2})
    assert later.deduplication_id() == op.deduplication_id()
    assert 1 <= len(op.deduplication_id()) <= 128


@pytest.mark.parametrize(
    ("op", "changes"),
    [
        (INVITE, {"subscription_id": "sub-2"}),
        (INVITE, {"order_id": "ord-2"}),
        (INVITE, {"channel_id": "@otherchan"}),
        (INVITE, {"user_id": 6}),
        (REMOVE, {"reason": "expiry"}),
        (REMOVE, {"subscription_id": "sub-2"}),
        (REMOVE, {"channel_id": "@otherchan"}),
        (VERIFY, {"listing_id": "lst-2"}),
        (VERIFY, {"listing_id": None}),
        (VERIFY, {"channel_id": "@otherchan"}),
    ],
)
def test_dedup_id_changes_with_identity(op: Any, changes: dict[str, Any]) -> None:
    assert op.model_copy(update=changes).deduplication_id() != op.deduplication_id()


def test_dedup_id_differs_between_types() -> None:
    invite = InviteUser(user_id=5, channel_id="@somechan", subscription_id="s", order_id="refund")
    remove = RemoveUser(user_id=5, channel_id="@somechan", subscription_id="s", reason="refund")
    assert invite.deduplication_id() != remove.deduplication_id()


def test_dedup_id_is_unambiguous_when_fields_contain_the_separator() -> None:
    first = InviteUser(user_id=5, channel_id="@somechan", subscription_id="a|b", order_id="c")
    second = InviteUser(user_id=5, channel_id="@somechan", subscription_id="a", order_id="b|c")
    assert first != second
    assert first.deduplication_id() != second.deduplication_id()


ids = st.text(min_size=1, max_size=40)
channels = st.from_regex(r"\A(@[A-Za-z][A-Za-z0-9_]{3,31}|-?[1-9][0-9]{0,18})\Z")
# The wire carries milliseconds (JavaScript's toISOString), so strategies generate those.
timestamps = st.datetimes(
    min_value=datetime(1970, 1, 2),
    max_value=datetime(9999, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
common = {
    "channel_id": channels,
    "timestamp": timestamps,
    "attempt_count": st.integers(min_value=0, max_value=1000),
    "max_retries": st.integers(min_value=0, max_value=20),
}
user_common = {
    **common,
    "user_id": st.integers(min_value=1, max_value=2**53),
    "subscription_id": ids,
}
reasons = st.sampled_from(["expiry", "refund", "cancellation"])
operations = st.one_of(
    st.fixed_dictionaries({**user_common, "order_id": ids}).map(lambda f: InviteUser(**f)),
    st.fixed_dictionaries({**user_common, "reason": reasons}).map(lambda f: RemoveUser(**f)),
    st.fixed_dictionaries({**common, "listing_id": st.none() | ids}).map(
        lambda f: VerifyPermissions(**f)
    ),
)


@given(operations)
def test_any_valid_operation_round_trips(op: Any) -> None:
    decoded = decode_operation(op.to_json())
    assert decoded == op
    assert decoded.deduplication_id() == op.deduplication_id()
    assert decoded.group_id == op.group_id
