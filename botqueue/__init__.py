"""botqueue: Telegram bot membership operations on a durable FIFO queue, with retries and a DLQ.

The public names below are imported on first use (PEP 562), so that ``import botqueue`` (and
with it every ``botqueue`` command, which imports this package first) costs nothing until a
name is needed; ``from botqueue import BotQueueProducer`` works exactly as an eager import.
"""

import typing

from ._lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from .consumer import BotQueueConsumer, ConsumerHooks
    from .errors import (
        BotQueueError,
        ConfigurationError,
        DecodeError,
        EnqueueError,
        MessageTooLargeError,
        OperationError,
        OperationTimeoutError,
        OperationValidationError,
        PermanentError,
        RetryableError,
        TransportError,
    )
    from .failure import FailureRecord
    from .operations import (
        AnyOperation,
        InviteUser,
        RemoveUser,
        VerifyPermissions,
        build_operation,
        decode_operation,
    )
    from .producer import BotQueueProducer
    from .retry import Backoff, decide
    from .service import BotService, Outcome
    from .sync import SyncBotQueueProducer
    from .transports import Transport, open_transport

__all__ = [
    "AnyOperation",
    "Backoff",
    "BotQueueConsumer",
    "BotQueueError",
    "BotQueueProducer",
    "BotService",
    "ConfigurationError",
    "ConsumerHooks",
    "DecodeError",
    "EnqueueError",
    "FailureRecord",
    "InviteUser",
    "MessageTooLargeError",
    "OperationError",
    "OperationTimeoutError",
    "OperationValidationError",
    "Outcome",
    "PermanentError",
    "RemoveUser",
    "RetryableError",
    "SyncBotQueueProducer",
    "Transport",
    "TransportError",
    "VerifyPermissions",
    "build_operation",
    "decide",
    "decode_operation",
    "open_transport",
]

_ORIGIN = {
    "AnyOperation": "operations",
    "Backoff": "retry",
    "BotQueueConsumer": "consumer",
    "BotQueueError": "errors",
    "BotQueueProducer": "producer",
    "BotService": "service",
    "ConfigurationError": "errors",
    "ConsumerHooks": "consumer",
    "DecodeError": "errors",
    "EnqueueError": "errors",
    "FailureRecord": "failure",
    "InviteUser": "operations",
    "MessageTooLargeError": "errors",
    "OperationError": "errors",
    "OperationTimeoutError": "errors",
    "OperationValidationError": "errors",
    "Outcome": "service",
    "PermanentError": "errors",
    "RemoveUser": "operations",
    "RetryableError": "errors",
    "SyncBotQueueProducer": "sync",
    "Transport": "transports",
    "TransportError": "errors",
    "VerifyPermissions": "operations",
    "build_operation": "operations",
    "decide": "retry",
    "decode_operation": "operations",
    "open_transport": "transports",
}


__getattr__, __dir__ = _lazy_exports(__name__, _ORIGIN, globals(), __all__)
