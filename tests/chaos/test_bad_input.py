"""The defects the bad-input scenario found, each pinned by a fast test: a dead letter of a body
at the size limit was lost on the embedded queue (and refused for ever by SQS); text that is not
Unicode made a whole send batch raise; an operation dated before the year 1000 could not be
decoded after it was sent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from botqueue.errors import OperationValidationError
from botqueue.operations import VerifyPermissions, build_operation, decode_operation
from botqueue.transports import (
    FAILURE_ATTRIBUTE,
    MAX_MESSAGE_BYTES,
    OutgoingMessage,
    ReceivedMessage,
    SqliteTransport,
)
from botqueue.transports.sqs_batch import message_size
from botqueue.transports.sqs_dlq import dead_letter_entry

RECORD = {"error": "invalid operation: body: Invalid JSON", "kind": "undecodable", "attempts": 1}


def received(body: str) -> ReceivedMessage:
    """A delivery of ``body``."""
    return ReceivedMessage("m1", "r1", body, "g", 1, 0.0, 0.0)


async def test_bad_input_at_the_limit_is_dead_lettered_whole_on_the_embedded_queue(
    tmp_path: Path,
) -> None:
    async with SqliteTransport(f"sqlite:///{tmp_path / 'q.db'}") as transport:
        body = "x" * MAX_MESSAGE_BYTES
        (sent,) = await transport.send_batch([OutgoingMessage(body, "g", "d")])
        assert sent.message_id is not None
        (message,) = await transport.receive(1, wait_seconds=0)
        await transport.dead_letter(message, RECORD)
        (letter,) = await transport.dlq_list()
        assert letter.body == body and letter.failure == RECORD


async def test_bad_input_not_unicode_is_refused_alone(tmp_path: Path) -> None:
    async with SqliteTransport(f"sqlite:///{tmp_path / 'q.db'}") as transport:
        results = await transport.send_batch(
            [OutgoingMessage("ok", "g", "a"), OutgoingMessage("\udc80", "g", "b")]
        )
        assert results[0].message_id is not None
        assert results[1].message_id is None and "not valid Unicode" in str(results[1].error)


def test_bad_input_dead_letters_fit_sqs_whatever_the_body() -> None:
    failure = {**RECORD, "error": "channelId: " + "e" * 400}
    for size in (10, MAX_MESSAGE_BYTES - 250, MAX_MESSAGE_BYTES - 20, MAX_MESSAGE_BYTES):
        entry = dead_letter_entry(received("x" * size), failure)
        assert message_size(entry) <= MAX_MESSAGE_BYTES and entry.body == "x" * size
        record = json.loads(entry.attributes.get(FAILURE_ATTRIBUTE, "{}"))
        if size == 10:
            assert record == failure
        elif size == MAX_MESSAGE_BYTES - 250:  # room for a shortened record
            assert record["kind"] == "undecodable" and record["truncated"] is True
            assert failure["error"].startswith(record["error"]) and record["error"]
        elif size == MAX_MESSAGE_BYTES:  # no room at all: the body is kept, the record logged
            assert record == {}


@given(st.datetimes(timezones=st.timezones() | st.just(UTC)))
def test_bad_input_every_accepted_timestamp_survives_the_wire(moment: datetime) -> None:
    fields = {"operationType": "VERIFY_PERMISSIONS", "channelId": "-1001", "timestamp": moment}
    try:
        op = build_operation(fields)
    except OperationValidationError as error:
        assert set(error.errors) == {"timestamp"}
        return
    decoded = decode_operation(op.to_json())
    # Instants in UTC: Python never calls times equal across zones inside a DST gap or fold.
    assert decoded.timestamp == op.timestamp.astimezone(UTC)
    assert decoded.to_json() == op.to_json()


def test_bad_input_a_time_with_no_utc_is_refused() -> None:
    east = timezone(timedelta(hours=5))
    for moment in (datetime(1, 1, 1, tzinfo=east), datetime(5, 1, 1, tzinfo=UTC)):
        try:
            op = VerifyPermissions(channel_id="-1001", timestamp=moment)
        except ValueError:
            continue
        assert decode_operation(op.to_json()) == op
