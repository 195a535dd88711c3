"""The bad-input scenario's message bodies, drawn with hypothesis: valid operations (with
unknown keys), near-valid ones (one field wrong or missing), wrong types, unknown operation
types, junk, text that is not Unicode, deep nesting, and bodies at the 1 MiB limit."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from botqueue.operations import (
    MAX_RETRIES_LIMIT,
    OPERATION_TYPES,
    AnyOperation,
    InviteUser,
    RemoveUser,
    VerifyPermissions,
)
from botqueue.transports import MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class Body:
    """One raw message body and the family it was drawn from."""

    kind: str
    text: str


_ids = st.text(min_size=1, max_size=256)
_channels = st.from_regex(r"@[A-Za-z][A-Za-z0-9_]{3,31}|-?[1-9][0-9]{0,18}", fullmatch=True)
_common = {
    "channel_id": _channels,
    "max_retries": st.integers(0, MAX_RETRIES_LIMIT),
    "attempt_count": st.integers(0, 10**6),
    "timestamp": st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
}
_users = {"user_id": st.integers(1, 2**63), "subscription_id": _ids, **_common}
OPS: st.SearchStrategy[AnyOperation] = st.one_of(
    st.fixed_dictionaries({"order_id": _ids, **_users}).map(lambda f: InviteUser(**f)),
    st.fixed_dictionaries(
        {"reason": st.sampled_from(["expiry", "refund", "cancellation"]), **_users}
    ).map(lambda f: RemoveUser(**f)),
    st.fixed_dictionaries({"listing_id": st.none() | _ids, **_common}).map(
        lambda f: VerifyPermissions(**f)
    ),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_WIRE = {"operationType", "userId", "channelId", "subscriptionId", "orderId", "reason"}


def _fields(op: AnyOperation) -> dict[str, Any]:
    fields: dict[str, Any] = json.loads(op.to_json())
    return fields


def _dumps(fields: Any, ascii_only: bool = True) -> str:
    return json.dumps(fields, ensure_ascii=ascii_only)


@st.composite
def _valid(draw: st.DrawFn) -> str:
    fields = _fields(draw(OPS))
    extra = draw(
        st.dictionaries(st.text(max_size=12).filter(lambda k: k not in _WIRE), JSON, max_size=3)
    )
    return _dumps({**extra, **fields}, ascii_only=draw(st.booleans()))


@st.composite
def _near_valid(draw: st.DrawFn) -> str:
    fields = _fields(draw(OPS))
    key = draw(st.sampled_from(sorted(fields)))
    if draw(st.booleans()):
        del fields[key]  # one field missing
    else:
        fields[key] = draw(
            st.sampled_from([0, -1, 21, "", "x" * 257, "@ab", "yesterday", "2024-01-01T00:00:00"])
        )
    return _dumps(fields)


@st.composite
def _wrong_types(draw: st.DrawFn) -> str:
    fields = _fields(draw(OPS))
    key = draw(st.sampled_from(sorted(fields)))
    value = fields[key]
    fields[key] = draw(JSON.filter(lambda v: type(v) is not type(value)))
    if draw(st.integers(0, 9)) == 0:
        return _dumps([fields])  # the whole operation inside an array
    return _dumps(fields)


@st.composite
def _unknown_type(draw: st.DrawFn) -> str:
    fields = _fields(draw(OPS))
    fields["operationType"] = draw(
        st.sampled_from([t.lower() for t in OPERATION_TYPES] + ["INVITE_USER ", "BAN_USER"])
        | st.text().filter(lambda t: t not in OPERATION_TYPES)
        | JSON
    )
    return _dumps(fields)


_JUNK = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="ascii")),
    JSON.map(_dumps),
    st.sampled_from(["", " ", "null", "{", "}", "[]", "{}", "NaN", "1e999", "\ufeff{}", '"x"']),
)
# Bytes as a broken client sends them: invalid UTF-8 arrives as lone surrogates.
_NOT_UNICODE = st.one_of(
    st.binary(min_size=1).map(lambda b: b.decode("utf-8", "surrogateescape")),
    _valid().map(lambda body: body.replace('"', '"\udc80', 1)),
    _valid().map(lambda body: body.replace('"', '"\x00', 1)),  # a NUL: fine locally, not on SQS
    _valid().map(lambda body: body.replace('":"', '":"\\ud800', 1)),  # an escaped lone surrogate
)
FAMILIES = {
    "valid": (_valid(), 0.25),
    "near-valid": (_near_valid(), 0.2),
    "wrong-types": (_wrong_types(), 0.1),
    "unknown-type": (_unknown_type(), 0.08),
    "junk": (_JUNK, 0.2),
    "not-unicode": (_NOT_UNICODE, 0.07),
    "nested": (st.integers(1, 20_000).map(lambda n: "[" * n + "]" * n), 0.02),
}


def _collect(strategy: st.SearchStrategy[str], count: int, number: int) -> list[str]:
    """``count`` examples of a strategy, the same on every run (a fixed seed, no database)."""
    found: list[str] = []

    @seed(number)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def gather(text: str) -> None:
        found.append(text)

    gather()
    return found


def _padded(fields: dict[str, Any], size: int) -> str:
    """A valid operation padded with an unknown key to exactly ``size`` bytes."""
    body = _dumps({**fields, "pad": ""})
    return body.replace('"pad": ""', '"pad": "' + "p" * (size - len(body)) + '"')


def edge_cases() -> list[Body]:
    """Bodies at the limits, the same at every size."""
    verify = _fields(VerifyPermissions(channel_id="-1001000000001", listing_id="edge"))
    deep = [64, 199, 200, 201, 1000, 5000, 100_000]
    cases = [("huge", _padded(verify, n)) for n in (256 * 1024 + 1, MAX_MESSAGE_BYTES)]
    cases += [("huge", _padded(verify, MAX_MESSAGE_BYTES + 1))]  # refused at send
    cases += [("huge", "x" * n) for n in (MAX_MESSAGE_BYTES - 1, MAX_MESSAGE_BYTES)]
    cases += [("huge", "x" * (MAX_MESSAGE_BYTES + 1)), ("huge", "é" * (MAX_MESSAGE_BYTES // 2))]
    cases += [("nested", "[" * n + "]" * n) for n in deep]
    cases += [("nested", '{"a":' * n + "1" + "}" * n) for n in deep]
    cases += [
        ("nested", _dumps({**verify, "x": "[[["}).replace('"[[["', "[" * n + "]" * n)) for n in deep
    ]
    cases += [("nested", "[" * 100_000)]
    return [Body(kind, text) for kind, text in cases]


def generate(count: int) -> list[Body]:
    """About ``count`` bodies of every family, in a fixed interleaved order, plus the edges."""
    bodies = edge_cases()
    for number, (kind, (strategy, share)) in enumerate(FAMILIES.items()):
        bodies += [Body(kind, t) for t in _collect(strategy, max(3, round(count * share)), number)]
    # Interleaved, so valid and hostile bodies share receives and groups.
    return sorted(bodies, key=lambda b: zlib.crc32(b.text.encode(errors="surrogatepass")))
