"""Logging set-up: JSON lines when not on a terminal, readable colour output on one.

Every line, from structlog or from the standard library's loggers (httpx, telegram, aiohttp,
botocore, asyncio), is redacted once rendered: the bot token and its secret half are replaced
wherever they appear in the text, tracebacks and object reprs included. Redacting rendered text
costs one substring search per secret; walking every value of every event cost several times
more. Lines are rendered and written by a thread of their own (botqueue.log_writer).
"""

from __future__ import annotations

import atexit
import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import structlog

from .log_writer import IsoTimestamp, LineWriter, QueueLogger, hand_over, line_renderer

Emit = Callable[[str, dict[str, Any]], None]
"""(event, fields) -> None: log one line."""

__all__ = [
    "configure_logging",
    "direct_emitter",
    "flush_logs",
    "redact_event",
    "redact_secrets",
    "redact_value",
    "redacting",
    "register_secret",
]

LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

REDACTED = "<token>"
"""What a secret is replaced with."""

# Longest first, so a whole token is replaced before its secret half could match inside it.
_secrets: tuple[str, ...] = ()
_PLAIN = (int, float, bool, type(None))


def register_secret(token: str | None) -> None:
    """Redact ``token`` (and its secret half, after the colon) from every log line from now on.

    Secrets are process-wide and never forgotten: a token, once seen, stays redacted.
    """
    global _secrets
    if not token:
        return
    found = {token, *_secrets}
    secret = token.partition(":")[2]
    if len(secret) >= 8:  # a shorter "half" would match ordinary text
        found.add(secret)
    _secrets = tuple(sorted(found, key=len, reverse=True))


def redact_secrets(text: str) -> str:
    """``text`` with every registered secret replaced by ``<token>``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_value(value: Any) -> Any:
    """Redact secrets in a string, or in the strings inside mappings and sequences; any other
    object whose repr carries a secret becomes its redacted repr."""
    if not _secrets or isinstance(value, _PLAIN):
        return value
    if isinstance(value, str):
        return redact_secrets(value)
    if isinstance(value, Mapping):
        return {redact_value(k): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    shown = repr(value)
    return redact_secrets(shown) if any(s in shown for s in _secrets) else value


def redact_event(
    logger: Any, method_name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """structlog processor: redact every value of the event, for chains with a renderer of
    their own (configure_logging redacts the rendered line instead)."""
    if _secrets:
        for key, value in event_dict.items():
            if not isinstance(value, _PLAIN):
                event_dict[key] = redact_value(value)
    return event_dict


def redacting(renderer: structlog.typing.Processor) -> structlog.typing.Processor:
    """Wrap a renderer so that its output line has every registered secret replaced."""

    def render(logger: Any, method_name: str, event_dict: structlog.typing.EventDict) -> Any:
        line = renderer(logger, method_name, event_dict)
        return redact_secrets(line) if isinstance(line, str) else line

    return render


class _BotqueueHandler(logging.Handler):
    """The root handler configure_logging installs: formats in the caller's thread (the
    exception is there) and hands the line to the writer, so that library lines and botqueue's
    stay in order."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        """Format the record and queue the line."""
        try:
            self.writer.put(self.format(record))
        except Exception:
            self.handleError(record)


_writer: LineWriter | None = None


def _writer_for(out: TextIO) -> LineWriter:
    global _writer
    if _writer is None or _writer.stream is not out:
        if _writer is None:
            atexit.register(_close_writer)
        else:
            _writer.close()
        _writer = LineWriter(out, redact_secrets)
    return _writer


def _close_writer() -> None:
    if _writer is not None:
        _writer.close()


def flush_logs(timeout: float = 5.0) -> None:
    """Wait until every log line so far is written (they are written by a thread)."""
    if _writer is not None:
        _writer.flush(timeout)


@dataclass(frozen=True)
class _Installed:
    """What configure_logging installed, to recognise it later, and its direct emitters."""

    processors: list[Any]
    snapshot: tuple[Any, ...]
    wrapper_class: Any
    logger_factory: Any
    level: int
    logger: QueueLogger
    emitters: dict[str, Emit]

    def emitter(self, method_name: str) -> Emit:
        """The emitter for one method, made once."""
        emit = self.emitters.get(method_name)
        if emit is None:
            logger = self.logger
            render, put = logger.render, logger.writer.put
            merge = structlog.contextvars.merge_contextvars

            def emit(event: str, fields: dict[str, Any]) -> None:
                merge(None, method_name, fields)
                fields["event"] = event
                try:
                    line = render(method_name, fields)
                except Exception:  # the generic path reports an unrenderable event
                    logger.msg(method_name, fields)
                    return
                put(line)

            self.emitters[method_name] = emit
        return emit


_installed: _Installed | None = None


def direct_emitter(method_name: str) -> Emit | None:
    """A shortcut past structlog's generic machinery, for a line logged once per operation:
    None unless configure_logging's own configuration is in force (not changed, not captured
    by capture_logs) and ``method_name``'s level is enabled. Its output is the same line.

    structlog's bound logger (level check, context copy, processor chain, dispatch) cost as
    much as rendering the line; the worker logs a line for every operation.
    """
    installed = _installed
    if installed is None or LEVELS.get(method_name, 0) < installed.level:
        return None
    config = structlog.get_config()
    if (
        config["processors"] is not installed.processors
        or config["wrapper_class"] is not installed.wrapper_class
        or config["logger_factory"] is not installed.logger_factory
        or tuple(installed.processors) != installed.snapshot
    ):
        return None
    return installed.emitter(method_name)


def _console() -> structlog.dev.ConsoleRenderer:
    # plain_traceback: rich's pretty tracebacks would print local variables, token included.
    return structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)


def _route_stdlib(writer: LineWriter, level: int, use_json: bool) -> None:
    # Libraries log through the standard library; their lines get the same format and the same
    # redaction. Below WARNING they are noise (httpx logs every request URL, token and all).
    shared: list[structlog.typing.Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        IsoTimestamp(),
    ]
    handler = _BotqueueHandler(writer)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer() if use_json else _console(),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _BotqueueHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))


def configure_logging(
    level: str = "info",
    *,
    stream: TextIO | None = None,
    json: bool | None = None,
    token: str | None = None,
) -> None:
    """Send structlog and standard-library output to ``stream`` (stderr) at ``level``; JSON
    unless on a terminal. ``token`` is redacted from every line. Lines are written by a thread
    of their own, in batches (see botqueue.log_writer); flush_logs() waits for them."""
    register_secret(token)
    out = stream or sys.stderr
    use_json = not out.isatty() if json is None else json
    writer = _writer_for(out)
    queue_logger = QueueLogger(writer, line_renderer(use_json, _console()))
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.format_exc_info,
        hand_over,  # the QueueLogger adds level and time as it renders
    ]
    wrapper_class = structlog.make_filtering_bound_logger(LEVELS[level])

    def logger_factory(*args: Any) -> QueueLogger:
        return queue_logger

    structlog.configure(
        processors=processors,
        wrapper_class=wrapper_class,
        logger_factory=logger_factory,
        cache_logger_on_first_use=False,
    )
    global _installed
    _installed = _Installed(
        processors,
        tuple(processors),
        wrapper_class,
        logger_factory,
        LEVELS[level],
        queue_logger,
        {},
    )
    _route_stdlib(writer, LEVELS[level], use_json)
