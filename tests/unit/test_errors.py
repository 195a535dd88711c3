"""The error tree: every class pickles with its context; retryability is on the class."""

from __future__ import annotations

import inspect
import pickle
from typing import Any

import pytest

from botqueue import errors
from botqueue.errors import (
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

ALL_CLASSES = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, BotQueueError) and cls.__module__ == errors.__name__
    ),
    key=lambda cls: cls.__name__,
)


def _example(cls: type[BotQueueError]) -> BotQueueError:
    """An instance of ``cls`` carrying every kind of context its family takes."""
    if issubclass(cls, EnqueueError):
        return cls({1: "throttled", 3: "too big"}, {0: "id-0", 2: "id-2"})
    if issubclass(cls, OperationValidationError):
        return cls({"userId": "must be > 0", "channelId": "bad"})
    if issubclass(cls, RetryableError):
        return cls("Too Many Requests", retry_after=17.5, detail={"status": 429})
    if issubclass(cls, OperationError):
        return cls("bot is not an administrator", detail={"chat": "@somechan", "status": 403})
    return cls(f"{cls.__name__} happened")


EXAMPLES = [_example(cls) for cls in ALL_CLASSES] + [RetryableError("network down")]


def _round_trip(error: BaseException) -> Any:
    return pickle.loads(pickle.dumps(error))


def test_every_class_was_found() -> None:
    assert {
        BotQueueError, ConfigurationError, DecodeError, EnqueueError, MessageTooLargeError,
        OperationError, OperationValidationError, PermanentError, RetryableError, TransportError,
    } <= set(ALL_CLASSES)  # fmt: skip


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("protocol", [0, pickle.HIGHEST_PROTOCOL])
def test_pickles_with_message_and_context(error: BotQueueError, protocol: int) -> None:
    copy = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.args == error.args
    assert vars(copy) == vars(error)


def test_validation_errors_keep_their_field_map() -> None:
    copy = _round_trip(DecodeError({"reason": "bad", "userId": "missing"}))
    assert copy.errors == {"reason": "bad", "userId": "missing"}
    assert "reason: bad" in str(copy)
    assert isinstance(copy, ValueError)


def test_enqueue_error_keeps_failures_and_ids() -> None:
    copy = _round_trip(EnqueueError({4: "too big"}, {0: "a", 1: "b"}))
    assert copy.failures == {4: "too big"}
    assert copy.message_ids == {0: "a", 1: "b"}
    assert "entry 4: too big" in str(copy)


def test_retryable_error_keeps_retry_after_and_detail() -> None:
    copy = _round_trip(RetryableError("slow down", retry_after=3.0, detail={"chat": 7}))
    assert (copy.message, copy.retry_after, copy.detail) == ("slow down", 3.0, {"chat": 7})
    assert _round_trip(RetryableError("x")).retry_after is None


def test_permanent_error_keeps_detail() -> None:
    copy = _round_trip(PermanentError("chat not found", detail={"chat": "@gone_chan"}))
    assert (copy.message, copy.detail) == ("chat not found", {"chat": "@gone_chan"})


def test_subclass_with_extra_state_pickles() -> None:
    copy = _round_trip(_ChatMigrated("migrated", migrate_to=-100999))
    assert isinstance(copy, _ChatMigrated)
    assert (copy.message, copy.migrate_to) == ("migrated", -100999)


class _ChatMigrated(PermanentError):
    """A service-defined error with state the base classes don't know about."""

    def __init__(self, message: str, *, migrate_to: int) -> None:
        super().__init__(message)
        self.migrate_to = migrate_to


def test_permanent_and_retryable_are_disjoint() -> None:
    assert not issubclass(PermanentError, RetryableError)
    assert not issubclass(RetryableError, PermanentError)
    assert issubclass(PermanentError, OperationError)
    assert issubclass(RetryableError, OperationError)


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [(OperationError, False), (RetryableError, True), (PermanentError, False)],
)
def test_retryable_is_a_class_attribute(cls: type[OperationError], retryable: bool) -> None:
    assert cls.retryable is retryable
    assert cls("x").retryable is retryable
    assert "retryable" not in vars(cls("x"))


@pytest.mark.parametrize(
    "cls", [c for c in ALL_CLASSES if issubclass(c, OperationError)], ids=lambda c: c.__name__
)
def test_only_retryable_errors_say_retryable(cls: type[OperationError]) -> None:
    assert cls.retryable is issubclass(cls, RetryableError)
    assert not (issubclass(cls, PermanentError) and issubclass(cls, RetryableError))


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        (ConfigurationError, BotQueueError),
        (OperationValidationError, BotQueueError),
        (OperationValidationError, ValueError),
        (DecodeError, OperationValidationError),
        (TransportError, BotQueueError),
        (MessageTooLargeError, TransportError),
        (EnqueueError, TransportError),
        (OperationError, BotQueueError),
    ],
)
def test_tree(cls: type[Exception], parent: type[Exception]) -> None:
    assert issubclass(cls, parent)
