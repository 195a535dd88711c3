"""Hooks the consumer calls around each message; logging, metrics and outcomes hang here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from ..logs import direct_emitter
from ..operations import AnyOperation, VerifyPermissions
from ..service import Outcome
from ..transports.base import ReceivedMessage


class ConsumerHooks:
    """No-op base class: override the events you care about. Hooks must not raise."""

    def on_service_started(self) -> None:
        """The service started (its token was accepted); consuming begins."""

    def on_received(self, messages: Sequence[ReceivedMessage]) -> None:
        """A receive returned these messages (called once per non-empty receive)."""

    def on_deleted(self, count: int) -> None:
        """``count`` settled messages were deleted from the queue."""

    def on_started(self, op: AnyOperation, message: ReceivedMessage) -> None:
        """The operation decoded and is about to be performed (one call per attempt)."""

    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        """The operation finished (succeeded or was a no-op) and will be deleted."""

    def on_retry(
        self, op: AnyOperation, message: ReceivedMessage, error: BaseException, delay: float
    ) -> None:
        """The attempt failed and the message becomes visible again after ``delay`` seconds."""

    def on_dead_letter(
        self, op: AnyOperation | None, message: ReceivedMessage, failure: Mapping[str, Any]
    ) -> None:
        """The message was written to the DLQ with ``failure`` (op is None if undecodable)."""

    def on_dropped(self, op: AnyOperation, message: ReceivedMessage, error: BaseException) -> None:
        """A permanent failure was deleted without a dead letter (drop_permanent is on)."""


def operation_fields(op: AnyOperation | None, message: ReceivedMessage) -> dict[str, Any]:
    """The fields every log line about an operation carries."""
    fields: dict[str, Any] = {"messageId": message.message_id, "attempt": message.receive_count}
    if op is not None:
        fields["operationType"] = op.operation_type
        fields["channelId"] = op.channel_id
        if not isinstance(op, VerifyPermissions):
            fields["userId"] = op.user_id
            fields["subscriptionId"] = op.subscription_id
        elif op.listing_id:
            fields["listingId"] = op.listing_id
    return fields


class LoggingHooks(ConsumerHooks):
    """Structured log lines: info when done or dead-lettered, warning on retry, error when
    a failure is permanent."""

    def __init__(self) -> None:
        self.log = structlog.get_logger("botqueue.consumer")

    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        """Log the finished operation (the one line per operation: it takes the direct path
        when configure_logging's configuration is in force)."""
        fields = operation_fields(op, message)
        fields["status"] = outcome.status
        fields["seconds"] = round(seconds, 4)
        emit = direct_emitter("info")
        if emit is not None:
            emit("Bot operation done", fields)
        else:
            self.log.info("Bot operation done", **fields)

    def on_retry(
        self, op: AnyOperation, message: ReceivedMessage, error: BaseException, delay: float
    ) -> None:
        """Log the failed attempt and when it will be retried."""
        self.log.warning(
            "Bot operation failed, will retry",
            error=str(error),
            errorType=type(error).__name__,
            retryInSeconds=round(delay, 3),
            **operation_fields(op, message),
        )

    def on_dead_letter(
        self, op: AnyOperation | None, message: ReceivedMessage, failure: Mapping[str, Any]
    ) -> None:
        """Log the dead letter; a permanent failure is an error."""
        level = self.log.error if failure.get("kind") == "permanent" else self.log.info
        level(
            "Bot operation dead-lettered",
            kind=failure.get("kind"),
            error=failure.get("error"),
            **operation_fields(op, message),
        )

    def on_dropped(self, op: AnyOperation, message: ReceivedMessage, error: BaseException) -> None:
        """Log the dropped permanent failure."""
        self.log.error(
            "Bot operation failed permanently, deleted",
            error=str(error),
            **operation_fields(op, message),
        )


class HookSet(ConsumerHooks):
    """Calls several hooks in turn; one that raises is logged and the others still run.

    The hooks are fixed at construction: for each event only the hooks that override it are
    called (the no-op base methods cost more than the metrics themselves, per operation).
    """

    def __init__(self, hooks: Sequence[ConsumerHooks]) -> None:
        self.hooks = list(hooks)
        self.log = structlog.get_logger("botqueue.hooks")
        self._calls: dict[str, list[Any]] = {
            name: [m for m in (getattr(h, name, None) for h in self.hooks) if _overridden(m, name)]
            for name in _EVENTS
        }
        self._started = self._calls["on_started"]
        self._success = self._calls["on_success"]

    def _each(self, name: str, *args: Any) -> None:
        for method in self._calls[name]:
            try:
                method(*args)
            except Exception as error:  # a broken hook must never fail an operation
                self._raised(method, name, error)

    def _raised(self, method: Any, name: str, error: Exception) -> None:
        self.log.error(
            "hook raised",
            hook=type(getattr(method, "__self__", method)).__name__,
            hookEvent=name,
            error=repr(error),
        )

    def on_service_started(self) -> None:
        """Call every hook's on_service_started."""
        self._each("on_service_started")

    def on_received(self, messages: Sequence[ReceivedMessage]) -> None:
        """Call every hook's on_received."""
        self._each("on_received", messages)

    def on_deleted(self, count: int) -> None:
        """Call every hook's on_deleted."""
        self._each("on_deleted", count)

    # The two events of every operation loop here without _each's argument packing and lookup.
    def on_started(self, op: AnyOperation, message: ReceivedMessage) -> None:
        """Call every hook's on_started."""
        for method in self._started:
            try:
                method(op, message)
            except Exception as error:
                self._raised(method, "on_started", error)

    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        """Call every hook's on_success."""
        for method in self._success:
            try:
                method(op, message, outcome, seconds)
            except Exception as error:
                self._raised(method, "on_success", error)

    def on_retry(
        self, op: AnyOperation, message: ReceivedMessage, error: BaseException, delay: float
    ) -> None:
        """Call every hook's on_retry."""
        self._each("on_retry", op, message, error, delay)

    def on_dead_letter(
        self, op: AnyOperation | None, message: ReceivedMessage, failure: Mapping[str, Any]
    ) -> None:
        """Call every hook's on_dead_letter."""
        self._each("on_dead_letter", op, message, failure)

    def on_dropped(self, op: AnyOperation, message: ReceivedMessage, error: BaseException) -> None:
        """Call every hook's on_dropped."""
        self._each("on_dropped", op, message, error)


_EVENTS = (
    "on_service_started",
    "on_received",
    "on_deleted",
    "on_started",
    "on_success",
    "on_retry",
    "on_dead_letter",
    "on_dropped",
)


def _overridden(method: Any, name: str) -> bool:
    # A bound method of ConsumerHooks' own no-op is skipped; anything else callable is called.
    return callable(method) and getattr(method, "__func__", None) is not getattr(
        ConsumerHooks, name
    )
