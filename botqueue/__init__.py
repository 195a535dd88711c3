"""botqueue: Telegram bot membership operations on a durable FIFO queue, with retries and a DLQ."""

from .consumer import BotQueueConsumer
from .errors import (
    BotQueueError,
    ConfigurationError,
    DecodeError,
    EnqueueError,
    MessageTooLargeError,
    OperationError,
    OperationValidationError,
    PermanentError,
    RetryableError,
    TransportError,
)
from .failure import FailureRecord
from .hooks import ConsumerHooks
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
