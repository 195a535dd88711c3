"""Dead letters as the dashboard shows them: table rows, filters and the detail's texts.

Everything here is read from the letter without trusting it: a body that is not JSON, or JSON
nested past the parser's limit (``[`` x 5,000), is shown as the raw text it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..logs import redact_secrets
from ..transports.base import DeadLetter

MISSING = "—"
"""Shown in a cell the letter has no value for."""


def parse_body(raw: str) -> Any:
    """The body as JSON, or None when it does not parse (or nests too deep to parse)."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def pretty(value: Any, raw: str) -> str:
    """``value`` as indented JSON; ``raw`` when it cannot be written back (too deep)."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    except (ValueError, RecursionError, TypeError):
        return raw


def _text(value: Any) -> str:
    if value is None or value == "":
        return MISSING
    # Records are redacted when written; this keeps a token out of older ones too.
    return redact_secrets(str(value))


@dataclass(frozen=True, slots=True)
class Row:
    """One dead letter's table row (every field a display string)."""

    message_id: str
    op_type: str
    channel: str
    user: str
    kind: str
    reason: str
    attempts: str
    first_attempt: str
    last_attempt: str
    error: str


def _detail(failure: Mapping[str, Any]) -> Mapping[str, Any]:
    detail = failure.get("detail")
    return detail if isinstance(detail, Mapping) else {}


def row_of(letter: DeadLetter) -> Row:
    """The table row of a dead letter."""
    body = parse_body(letter.body)
    fields: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    failure = letter.failure or {}
    return Row(
        message_id=letter.message_id,
        op_type=_text(fields.get("operationType") or failure.get("operationType")),
        channel=_text(fields.get("channelId")),
        user=_text(fields.get("userId")),
        kind=_text(failure.get("kind")),
        reason=_text(_detail(failure).get("reason")),
        attempts=_text(failure.get("attempts")),
        first_attempt=_text(failure.get("firstAttemptAt")),
        last_attempt=_text(failure.get("lastAttemptAt")),
        error=_text(failure.get("error")),
    )


@dataclass(frozen=True, slots=True)
class Filters:
    """The table's filters; an empty string matches everything."""

    kind: str = ""
    reason: str = ""
    op_type: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> Filters:
        """Filters from ``?kind=&reason=&type=``."""
        return cls(query.get("kind", ""), query.get("reason", ""), query.get("type", ""))

    def matches(self, row: Row) -> bool:
        """Whether the row passes every filter."""
        return (
            (not self.kind or row.kind == self.kind)
            and (not self.reason or row.reason == self.reason)
            and (not self.op_type or row.op_type == self.op_type)
        )


def choices(rows: Iterable[Row]) -> dict[str, list[str]]:
    """The values each filter can take, from the rows themselves, sorted."""
    kinds: set[str] = set()
    reasons: set[str] = set()
    types: set[str] = set()
    for row in rows:
        kinds.add(row.kind)
        reasons.add(row.reason)
        types.add(row.op_type)
    return {"kind": sorted(kinds), "reason": sorted(reasons), "type": sorted(types)}


@dataclass(frozen=True, slots=True)
class Detail:
    """What the detail view shows of one dead letter."""

    row: Row
    body: str
    failure: str
    invite_link: str | None
    link_valid: bool | None
    group_id: str


def detail_of(letter: DeadLetter) -> Detail:
    """The detail view of a dead letter: body and failure record as text, the invite link."""
    body = parse_body(letter.body)
    failure = letter.failure or {}
    detail = _detail(failure)
    link = detail.get("inviteLink")
    valid = detail.get("linkValid")
    return Detail(
        row=row_of(letter),
        body=redact_secrets(letter.body if body is None else pretty(body, letter.body)),
        failure=redact_secrets(pretty(dict(failure), str(failure))) if failure else MISSING,
        invite_link=redact_secrets(link) if isinstance(link, str) and link else None,
        link_valid=valid if isinstance(valid, bool) else None,
        group_id=letter.group_id,
    )


def plural(count: int, noun: str = "dead letter") -> str:
    """``1 dead letter`` / ``3 dead letters``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def find(letters: Sequence[DeadLetter], message_id: str) -> DeadLetter | None:
    """The letter with this id, if listed."""
    return next((letter for letter in letters if letter.message_id == message_id), None)
