"""Logs: JSON lines off a terminal, colour on one; the fields and levels of every line about an
operation; and no bot token anywhere, in any value, traceback or library log line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from botqueue import BotQueueProducer
from botqueue.logs import configure_logging, flush_logs, redact_secrets, register_secret
from botqueue.transports import SqliteTransport
from tests.obs_run import drain, fill, mixed_operations

TOKEN = "555000111:AAEloggingTestSecretSecretSecret0001"
SECRET = TOKEN.partition(":")[2]


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put structlog and the root logger back as they were."""
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    """The stream's lines, each parsed as JSON (once the writer thread has written them)."""
    flush_logs()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_when_not_on_a_terminal() -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    structlog.get_logger("t").info("Bot operation done", operationType="INVITE_USER")
    structlog.get_logger("t").debug("not shown")
    logging.getLogger("aiohttp.client").warning("from a library %s", "too")
    logging.getLogger("httpx").info("below WARNING: not shown")
    first, second = json_lines(out)
    assert first["event"] == "Bot operation done" and first["level"] == "info"
    assert first["operationType"] == "INVITE_USER" and first["timestamp"].endswith("Z")
    assert second == {**second, "event": "from a library too", "logger": "aiohttp.client"}


def test_readable_colour_output_on_a_terminal() -> None:
    out = Terminal()
    configure_logging("info", stream=out, token=TOKEN)
    log = structlog.get_logger("t")
    log.warning("Bot operation failed, will retry", attempt=2, url=f"/bot{TOKEN}/getMe")
    try:
        raise ValueError(f"broken {TOKEN}")
    except ValueError:
        log.exception("internal error while processing")
        logging.getLogger("httpx").exception("library %s", TOKEN)
    flush_logs()
    text = out.getvalue()
    assert "Bot operation failed, will retry" in text and "attempt" in text
    assert "\x1b[" in text  # colour
    assert "ValueError: broken <token>" in text
    assert TOKEN not in text and SECRET not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_the_token_is_redacted_everywhere() -> None:
    out = io.StringIO()
    configure_logging("debug", stream=out, token=TOKEN)
    log = structlog.get_logger("t")
    url = f"https://api.telegram.org/bot{TOKEN}/getMe"

    class Holder:
        def __repr__(self) -> str:
            return f"Holder({TOKEN})"

    log.info(f"calling {url}", url=url, nested={"urls": [url, (SECRET,)]}, obj=Holder())
    log.error("secret half alone", error=f"...{SECRET}...")
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        log.exception("request failed")
        logging.getLogger("telegram.ext").exception("library saw %s", url)
    logging.getLogger("httpx").warning("HTTP Request: POST %s", url)
    flush_logs()
    text = out.getvalue()
    assert TOKEN not in text and SECRET not in text
    lines = json_lines(out)
    assert len(lines) == 5
    assert lines[0]["url"] == "https://api.telegram.org/bot<token>/getMe"
    assert lines[0]["nested"] == {"urls": [lines[0]["url"], ["<token>"]]}
    assert lines[0]["obj"].endswith("Holder(<token>)")  # JSON falls back to repr()
    assert "ConnectionError: cannot reach" in lines[2]["exception"]
    assert "ConnectionError" in lines[3]["exception"]
    assert redact_secrets(f"a {TOKEN} b {SECRET}") == "a <token> b <token>"


def test_a_short_secret_half_is_not_redacted_alone() -> None:
    register_secret("42:short")
    assert redact_secrets("42:short and short") == "<token> and short"


async def test_levels_and_fields_of_operation_lines(
    sqlite_transport: SqliteTransport,
) -> None:
    with capture_logs() as logs:
        await BotQueueProducer(sqlite_transport).enqueue_many(mixed_operations())
        await fill(sqlite_transport, [])
        await drain(sqlite_transport, [])
    about_operations = [line for line in logs if line["event"].startswith("Bot operation")]
    for line in about_operations:
        assert {"messageId", "attempt"} <= set(line), line
        if line.get("kind") != "undecodable":
            assert {"operationType", "channelId"} <= set(line), line
        if line.get("operationType") in ("INVITE_USER", "REMOVE_USER"):
            assert {"userId", "subscriptionId"} <= set(line), line
        if line.get("operationType") == "VERIFY_PERMISSIONS":
            assert line["listingId"] == "boom-1"
    levels: dict[tuple[str, Any], set[str]] = {}
    for line in about_operations:
        levels.setdefault((line["event"], line.get("kind")), set()).add(line["log_level"])
    assert levels == {
        ("Bot operation enqueued", None): {"info"},
        ("Bot operation done", None): {"info"},
        ("Bot operation failed, will retry", None): {"warning"},
        ("Bot operation dead-lettered", "permanent"): {"error"},
        ("Bot operation dead-lettered", "exhausted"): {"info"},
        ("Bot operation dead-lettered", "undecodable"): {"info"},
    }


async def test_dlq_records_carry_no_token(
    sqlite_transport: SqliteTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)  # the scripted service puts it in errors
    register_secret(TOKEN)
    await fill(sqlite_transport)
    with capture_logs():
        await drain(sqlite_transport, [])
    letters = await sqlite_transport.dlq_list()
    records = json.dumps([letter.failure for letter in letters])
    assert len(letters) == 4 and "<token>" in records
    assert TOKEN not in records and SECRET not in records
    perm = next(letter.failure for letter in letters if letter.failure["kind"] == "permanent")
    assert perm["detail"]["reason"] == "not_enough_rights"
    assert perm["detail"]["request"] == "https://api.telegram.org/bot<token>/banChatMember"


def test_the_per_operation_line_is_the_same_on_the_direct_path() -> None:
    from botqueue.consumer import LoggingHooks
    from botqueue.operations import InviteUser
    from botqueue.service import Outcome
    from botqueue.transports import ReceivedMessage

    op = InviteUser(channel_id="-1001000000001", user_id=5, subscription_id="s1", order_id="o")
    message = ReceivedMessage("m-1", "r", "{}", "g", 2, 0.0, 0.0)
    out = io.StringIO()
    configure_logging("info", stream=out)
    hooks = LoggingHooks()
    hooks.on_success(op, message, Outcome("noop"), 0.00123)  # direct path
    structlog.contextvars.bind_contextvars(requestId="r-9")
    try:
        hooks.on_success(op, message, Outcome(), 0.5)
    finally:
        structlog.contextvars.clear_contextvars()
    structlog.get_logger("x").info(  # structlog's own path, for comparison
        "Bot operation done", messageId="m-1", attempt=2, operationType="INVITE_USER",
        channelId="-1001000000001", userId=5, subscriptionId="s1", status="noop", seconds=0.0012,
    )  # fmt: skip
    direct, with_context, generic = json_lines(out)
    assert {k: v for k, v in direct.items() if k != "timestamp"} == {
        k: v for k, v in generic.items() if k != "timestamp"
    }
    assert list(direct) == list(generic)  # same keys in the same order
    assert with_context["requestId"] == "r-9"
    # Captured logs (tests) still see the line: the direct path steps aside.
    with capture_logs() as logs:
        hooks.on_success(op, message, Outcome(), 0.1)
    assert logs and logs[0]["event"] == "Bot operation done"
    assert len(json_lines(out)) == 3  # and nothing was written
    configure_logging("warning", stream=out)
    hooks.on_success(op, message, Outcome(), 0.1)  # below the level: nothing
    assert len(json_lines(out)) == 3


def test_the_writer_batches_survives_a_broken_stream_and_flushes_on_close() -> None:
    from botqueue.log_writer import LineWriter

    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    broken = LineWriter(Broken(), batch_delay=0.001)
    broken.put("lost")
    broken.flush()  # no exception, the thread lives on
    broken.close()
    out = io.StringIO()
    writer = LineWriter(out, redact_secrets, batch_delay=0.05)
    register_secret(TOKEN)
    for n in range(500):
        writer.put(f"line {n} {TOKEN}")
    writer.close()  # writes what is queued before stopping
    lines = out.getvalue().splitlines()
    assert len(lines) == 500 and lines[-1] == "line 499 <token>"


def test_values_orjson_refuses_and_non_ascii_on_an_ascii_stream_are_still_written() -> None:
    raw = io.BytesIO()
    stream = io.TextIOWrapper(raw, encoding="ascii", write_through=True)
    configure_logging("info", stream=stream, json=True)
    structlog.get_logger("x").info("big", value=2**70, owner=object.__name__)
    structlog.get_logger("x").info("accents", name="Zoë 🎉")
    flush_logs()
    big, accents = (json.loads(line) for line in raw.getvalue().decode().splitlines())
    assert big["value"] == 2**70  # beyond orjson's 64 bits: the standard encoder took it
    assert accents["name"] == "Zoë 🎉"  # escaped for the ASCII stream, equal once decoded
    configure_logging("info", stream=io.StringIO())
