"""The transport the configuration names: what the CLI and the library open by default.

An application configured for SQS through BOT_OPERATIONS_QUEUE_URL must never enqueue into
a local file that no worker reads, so every entry point that is given no queue URL opens the
queue through :func:`configured_transport`, reading the same settings as ``botqueue worker``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import open_transport
from .base import Transport

if TYPE_CHECKING:
    from ..config import Settings


def configured_transport(
    queue_url: str | None = None,
    dlq_url: str | None = None,
    *,
    settings: Settings | None = None,
    visibility_timeout: float = 30.0,
) -> Transport:
    """The transport for ``queue_url``, or for the configured queue when it is None.

    Without a ``queue_url`` the queue and its DLQ are BOT_OPERATIONS_QUEUE_URL and
    BOT_OPERATIONS_DLQ_URL (a ``dlq_url`` argument still wins); AWS_REGION, SQS_ENDPOINT and
    USE_LOCALSTACK apply to an SQS queue either way. A ``queue_url`` given explicitly is never
    paired with the configured DLQ, which may belong to another queue.

    Raises:
        ConfigurationError: a setting is malformed (one line naming it), or the URL is.
    """
    if settings is None:
        from ..config import load_settings

        settings = load_settings()
    if queue_url is None:
        queue_url = settings.bot_operations_queue_url
        dlq_url = dlq_url if dlq_url is not None else settings.bot_operations_dlq_url
    # AWS_REGION, SQS_ENDPOINT and USE_LOCALSTACK are read where the SQS client is configured
    # (an AWS queue URL's own region must win over AWS_REGION there).
    return open_transport(queue_url, dlq_url, visibility_timeout=visibility_timeout)
