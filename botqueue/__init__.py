"""botqueue: Telegram bot membership operations on a durable FIFO queue, with retries and a DLQ.

The public names below are imported on first use (PEP 562), so that ``import botqueue`` (and
with it every ``botqueue`` command, which imports this package first) costs nothing until a
name is needed; ``from botqueue import BotQueueProducer`` works exactly as an eager import.

Plumbing (the retry decision, operation decoding) lives in its own modules:
``botqueue.retry.decide``, ``botqueue.operations.build_operation`` and ``decode_operation``.
"""

import typing

from ._lazy import lazy_exports as _lazy_exports
from ._version import __version__

if typing.TYPE_CHECKING:
    from .consumer import BotQueueConsumer, ConsumerHooks
    from .errors import (
        BotQueueError,
        ConfigurationError,
        DecodeError,
        EnqueueError,
        FatalError,
        MessageTooLargeError,
        OperationError,
        OperationTimeoutError,
        OperationValidationError,
        PermanentError,
        RetryableError,
        TransportError,
    )
    from .failure import FailureRecord
    from .operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions
    from .producer import BotQueueProducer
    from .retry import Backoff
    from .service import BotService, Outcome
    from .sync import SyncBotQueueProducer
    from .transports import ReceivedMessage, Transport, open_transport

# Grouped by role, for readers, not sorted: hence the noqa.
__all__ = [  # noqa: RUF022
    "__version__",
    # producing: the application's side
    "BotQueueProducer",
    "SyncBotQueueProducer",
    # operations: what is enqueued (the wire format's models)
    "AnyOperation",
    "InviteUser",
    "RemoveUser",
    "VerifyPermissions",
    # consuming: the worker's side and the service it calls
    "Backoff",
    "BotQueueConsumer",
    "BotService",
    "ConsumerHooks",
    "Outcome",
    # queues: transports, what they deliver, what a dead letter records
    "FailureRecord",
    "ReceivedMessage",
    "Transport",
    "open_transport",
    # errors: one tree, drawn in botqueue/errors.py
    "BotQueueError",
    "ConfigurationError",
    "DecodeError",
    "EnqueueError",
    "FatalError",
    "MessageTooLargeError",
    "OperationError",
    "OperationTimeoutError",
    "OperationValidationError",
    "PermanentError",
    "RetryableError",
    "TransportError",
]

_ORIGIN = {
    "BotQueueProducer": "producer",
    "SyncBotQueueProducer": "sync",
    "BotQueueConsumer": "consumer",
    "ConsumerHooks": "consumer",
    "BotService": "service",
    "Outcome": "service",
    "Backoff": "retry",
    "AnyOperation": "operations",
    "InviteUser": "operations",
    "RemoveUser": "operations",
    "VerifyPermissions": "operations",
    "Transport": "transports",
    "ReceivedMessage": "transports",
    "open_transport": "transports",
    "FailureRecord": "failure",
    **{name: "errors" for name in __all__ if name.endswith("Error")},
}


__getattr__, __dir__ = _lazy_exports(__name__, _ORIGIN, globals(), __all__)
