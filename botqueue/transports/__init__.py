"""Queue transports, chosen by URL: ``sqlite:///path.db`` (embedded) or an SQS queue URL."""

from __future__ import annotations

from urllib.parse import urlparse

from ..errors import ConfigurationError
from .base import (
    FAILURE_ATTRIBUTE,
    MAX_MESSAGE_BYTES,
    DeadLetter,
    OutgoingMessage,
    QueueStats,
    ReceivedMessage,
    SendResult,
    Transport,
)
from .sqlite import SqliteTransport

DEFAULT_URL = "sqlite:///botqueue.db"
"""The embedded queue in ./botqueue.db, used when no queue URL is configured."""

__all__ = [
    "DEFAULT_URL",
    "FAILURE_ATTRIBUTE",
    "MAX_MESSAGE_BYTES",
    "DeadLetter",
    "OutgoingMessage",
    "QueueStats",
    "ReceivedMessage",
    "SendResult",
    "SqliteTransport",
    "Transport",
    "open_transport",
]


def open_transport(
    url: str | None = None,
    dlq_url: str | None = None,
    *,
    visibility_timeout: float = 30.0,
) -> Transport:
    """Return the transport for a queue URL (not yet connected; use ``async with`` or aclose).

    Raises:
        ConfigurationError: the URL's scheme is unknown or the URL is malformed.
    """
    url = url or DEFAULT_URL
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        if dlq_url is not None and urlparse(dlq_url).scheme != "sqlite":
            raise ConfigurationError(
                f"BOT_OPERATIONS_DLQ_URL must be an sqlite:/// URL when the queue is: {dlq_url!r}"
            )
        return SqliteTransport(url, dlq_url, visibility_timeout=visibility_timeout)
    if scheme in ("http", "https"):
        raise ConfigurationError(
            f"SQS queue URLs are not supported by this version of botqueue yet: {url!r}; "
            "use sqlite:///path.db"
        )
    raise ConfigurationError(
        f"BOT_OPERATIONS_QUEUE_URL must be sqlite:///path.db or an SQS queue URL, not {url!r}"
    )
