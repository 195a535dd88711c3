"""Where log lines go: rendered in the thread that logs, written in batches by a thread of
their own.

A line per operation is the worker's busiest log; writing and flushing each one on the event
loop cost a system call per operation. Here the event loop only renders the line and queues
it; the writer thread wakes every ``batch_delay`` seconds (20 ms), redacts what has gathered in
one pass and writes it with one call. (Rendering in the writer thread instead, handing it the
event, cost more CPU in all: every event crossed threads and fought the event loop for the
GIL.) Lines still queued at exit are written by an atexit hook (see botqueue.logs); only a hard
kill (SIGKILL) can lose the last few milliseconds of them.
"""

from __future__ import annotations

import codecs
import contextlib
import json
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson
import structlog

Render = Callable[[str, Any], str]
"""(method name, event dict) -> the line."""
_STOP = object()
_JSON_ESCAPE = "botqueue-json-escape"


def _json_escape(error: UnicodeError) -> tuple[str, int]:
    # \uXXXX (surrogate pairs beyond the BMP): still valid JSON, unlike backslashreplace's \xeb.
    assert isinstance(error, UnicodeEncodeError)
    chunk = error.object[error.start : error.end]
    escaped = chunk.encode("utf-16-be")
    units = (escaped[i : i + 2].hex() for i in range(0, len(escaped), 2))
    return "".join(f"\\u{unit}" for unit in units), error.end


codecs.register_error(_JSON_ESCAPE, _json_escape)
_LEVELS = {"warn": "warning", "exception": "error"}


class LineWriter:
    """Writes queued lines to ``stream`` from a daemon thread, in batches; ``redact`` is
    applied to each batch before it is written."""

    def __init__(
        self,
        stream: TextIO,
        redact: Callable[[str], str] = str,
        *,
        batch_delay: float = 0.02,
    ) -> None:
        self.stream = stream
        self.redact = redact
        self.batch_delay = batch_delay
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="botqueue-logs", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """Queue a line (without its newline)."""
        self._queue.put(line)

    def flush(self, timeout: float = 5.0) -> None:
        """Wait (up to ``timeout`` seconds) until everything queued so far is written."""
        if self._thread.is_alive():
            done = threading.Event()
            self._queue.put(done)
            done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            time.sleep(self.batch_delay)  # let a batch gather
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self._queue.get_nowait())
            lines: list[str] = []
            for item in batch:
                if isinstance(item, str):
                    lines.append(item)
                    continue
                # A flush or stop marker: what came before it is written first.
                self._write(lines)
                lines = []
                if item is _STOP:
                    return
                item.set()
            self._write(lines)

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        # One search per secret for the whole batch, instead of one per line.
        text = self.redact("\n".join(lines) + "\n")
        # A closed or broken stream leaves nowhere to report the failure to.
        with contextlib.suppress(OSError, ValueError):
            try:
                self.stream.write(text)
            except UnicodeEncodeError:
                # Lines are UTF-8 JSON; a stream that cannot encode a character (an ASCII
                # terminal) gets it escaped rather than losing the batch.
                encoding = getattr(self.stream, "encoding", None) or "ascii"
                self.stream.write(text.encode(encoding, _JSON_ESCAPE).decode(encoding))
            self.stream.flush()


class QueueLogger:
    """The structlog logger behind configure_logging: renders what the processor chain hands
    it and queues the line on the writer."""

    def __init__(self, writer: LineWriter, render: Render) -> None:
        self.writer = writer
        self.render = render

    def msg(self, method_name: str, event_dict: Any) -> None:
        """Render and queue one event."""
        try:
            line = self.render(method_name, event_dict)
        except Exception as error:  # one bad event must not silence the rest
            line = f"unrenderable log event ({type(error).__name__}): {event_dict!r}"
        self.writer.put(line)

    debug = info = warn = warning = error = critical = exception = fatal = log = msg


def hand_over(logger: Any, method_name: str, event_dict: structlog.typing.EventDict) -> Any:
    """The last processor: pass the method name and the event to the QueueLogger (as
    positional arguments, structlog's (args, kwargs) form)."""
    return (method_name, event_dict), {}


_second_cache: tuple[int, str] = (-1, "")
_MILLIS = tuple(f".{ms:03d}Z" for ms in range(1000))


def iso_time(epoch: float) -> str:
    """ISO-8601 UTC with milliseconds (the wire format's precision); the date and time are
    formatted once a second (structlog's TimeStamper took a fifth of a log line's cost)."""
    global _second_cache
    second = int(epoch)
    cached, prefix = _second_cache
    if second != cached:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, prefix)  # one assignment: safe across threads
    return prefix + _MILLIS[int((epoch - second) * 1000)]


class IsoTimestamp:
    """Processor: ``timestamp`` as iso_time(now), for chains that render at once."""

    def __call__(
        self, logger: Any, method_name: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        """Add the timestamp."""
        event_dict["timestamp"] = iso_time(time.time())
        return event_dict


def _fallback_encoder() -> Callable[[Any], str]:
    # The standard library's C encoder, made once (json.dumps() builds one per call), for what
    # orjson refuses: integers beyond 64 bits, non-string keys.
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(default=repr).encode
    encode = make(
        None, repr, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return lambda value: "".join(encode(value, 0))


_encode_fallback = _fallback_encoder()


def encode_json(event_dict: Any) -> str:
    """One JSON line: orjson (8x the standard library's C encoder, which was half of a log
    line's cost), anything it cannot encode as its repr, and the standard library for what
    orjson refuses outright."""
    try:
        return orjson.dumps(event_dict, default=repr).decode()
    except TypeError:  # orjson.JSONEncodeError: e.g. an integer beyond 64 bits
        return _encode_fallback(event_dict)


def line_renderer(use_json: bool, console: structlog.typing.Processor) -> Render:
    """The QueueLogger's renderer: adds ``level`` and ``timestamp`` (what structlog's
    add_log_level and TimeStamper would, in one step), then JSON or ``console``."""

    def render(method_name: str, event_dict: Any) -> str:
        event_dict["level"] = _LEVELS.get(method_name, method_name)
        event_dict["timestamp"] = iso_time(time.time())
        if use_json:
            return encode_json(event_dict)
        return str(console(None, method_name, event_dict))

    return render
