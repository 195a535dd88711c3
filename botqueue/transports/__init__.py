"""Queue transports, chosen by URL: ``sqlite:///path.db`` (embedded) or an SQS queue URL."""

from __future__ import annotations

from typing import TYPE_CHECKING
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

if TYPE_CHECKING:
    from .sqlite import SqliteTransport
    from .sqs import SqsTransport

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
    "SqsTransport",
    "Transport",
    "open_transport",
]


def open_transport(
    url: str | None = None,
    dlq_url: str | None = None,
    *,
    visibility_timeout: float = 30.0,
    region: str | None = None,
    endpoint_url: str | None = None,
    use_localstack: bool | None = None,
) -> Transport:
    """Return the transport for a queue URL (not yet connected; use ``async with`` or aclose).

    For an http(s) SQS URL, ``region``, ``endpoint_url`` and ``use_localstack`` default to
    AWS_REGION, SQS_ENDPOINT and USE_LOCALSTACK (see botqueue.transports.sqs_client).

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
        from .sqlite import SqliteTransport

        return SqliteTransport(url, dlq_url, visibility_timeout=visibility_timeout)
    if scheme in ("http", "https"):
        from .sqs import SqsTransport
        from .sqs_client import resolve_client_config

        config = resolve_client_config(
            url, region=region, endpoint_url=endpoint_url, use_localstack=use_localstack
        )
        return SqsTransport(
            url, dlq_url, visibility_timeout=visibility_timeout, client_config=config
        )
    raise ConfigurationError(
        f"BOT_OPERATIONS_QUEUE_URL must be sqlite:///path.db or an SQS queue URL, not {url!r}"
    )


def __getattr__(name: str) -> object:
    # The SQS transport imports aiobotocore (about 22 MB of RSS); a worker on the embedded
    # queue never needs it, so it is loaded on first use. The SQLite one (sqlite3, asyncio,
    # a thread pool) waits too, so that ``botqueue --help`` does not pay for it.
    if name == "SqsTransport":
        from .sqs import SqsTransport

        return SqsTransport
    if name == "SqliteTransport":
        from .sqlite import SqliteTransport

        return SqliteTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
