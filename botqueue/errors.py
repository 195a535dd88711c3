"""Every error botqueue raises, in one tree.

::

    BotQueueError
    ├── ConfigurationError          a setting is missing or malformed (CLI: exit 2)
    ├── OperationValidationError    an operation's fields are invalid (also a ValueError)
    │   └── DecodeError             a queue body is not a valid operation (goes to the DLQ)
    ├── TransportError              the queue could not do what was asked
    │   ├── MessageTooLargeError    a body is over the queue's size limit
    │   └── EnqueueError            some entries of a batch were not sent
    └── OperationError              raised by a BotService; retryability is on the class
        ├── RetryableError          try again later (carries an optional retry_after)
        │   ├── OperationTimeoutError   the service took longer than the operation timeout
        │   ├── TelegramRetryableError  a Bot API answer worth retrying (telegram/errors.py)
        │   └── LedgerUnavailable   the invite-link ledger could not be read or written
        │                           (telegram/links.py)
        ├── PermanentError          retrying cannot help; goes to the DLQ at once
        │   ├── TelegramPermanentError  a Bot API answer retrying cannot change
        │   └── ChatMigratedError   the group became a supergroup (carries the new id)
        └── FatalError              the worker cannot go on (the bot token was revoked):
            │                       the message goes back to the queue and the worker stops
            └── BotUnauthorizedError    the Bot API rejected the token (401/404)

``BudgetUnavailable`` (telegram/flood/store.py) is internal: a shared flood budget that cannot be
reached never fails an operation; the worker falls back to its local share.

Permanent errors never inherit from retryable ones, so "retry what is retryable" can
never retry a permanent failure by accident. Every class pickles with its context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class BotQueueError(Exception):
    """Base class of every error botqueue raises."""


class ConfigurationError(BotQueueError):
    """A setting is missing or malformed; the message names it."""


class OperationValidationError(BotQueueError, ValueError):
    """An operation failed validation; ``errors`` maps each wire field to its problem."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        text = "; ".join(f"{field}: {problem}" for field, problem in self.errors.items())
        super().__init__(f"invalid operation: {text}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errors,))


class DecodeError(OperationValidationError):
    """A message body from the queue is not a valid operation."""


class TransportError(BotQueueError):
    """The queue could not perform a request."""


class MessageTooLargeError(TransportError):
    """A message body is larger than the queue accepts."""


class EnqueueError(TransportError):
    """Some entries of a send batch failed; ``failures`` maps entry index to reason."""

    def __init__(self, failures: Mapping[int, str], message_ids: Mapping[int, str]) -> None:
        self.failures = dict(failures)
        self.message_ids = dict(message_ids)
        detail = "; ".join(f"entry {i}: {why}" for i, why in sorted(self.failures.items()))
        super().__init__(f"{len(self.failures)} operation(s) not enqueued: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failures, self.message_ids))


class OperationError(BotQueueError):
    """A bot operation failed; subclasses say whether retrying can help."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = dict(detail or {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_operation_error, (type(self), self.message, self.__dict__))


class RetryableError(OperationError):
    """A transient failure: rate limit, network error, timeout, server error."""

    retryable: ClassVar[bool] = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.retry_after = retry_after


class OperationTimeoutError(RetryableError):
    """The service did not finish an operation within the consumer's operation timeout."""


class PermanentError(OperationError):
    """A failure retrying cannot fix: missing rights, unknown user or chat."""


class FatalError(OperationError):
    """No operation can succeed until an operator acts (e.g. an invalid bot token)."""


def _rebuild_operation_error(
    cls: type[OperationError], message: str, state: dict[str, Any]
) -> OperationError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error
