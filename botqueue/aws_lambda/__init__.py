"""The AWS Lambda handler: ``botqueue.aws_lambda.handler``, for an SQS event source mapping
with ReportBatchItemFailures.

Each record becomes the ReceivedMessage a receive would have given the worker, and runs
through the worker's own MessageProcessor and SqsTransport: the same decoding, Telegram
service, error classification, retry schedule (ChangeMessageVisibility to the backoff) and
dead letters with their failure record. What differs is around it:

- **Groups.** A batch's message groups run at once, each in order; a group stops at its first
  message that is not settled, which is reported with every later one of its group
  (botqueue.aws_lambda.batch). Settled messages (done or dead-lettered) are deleted by
  botqueue itself and not reported.
- **Warm reuse.** The event loop, the service (its HTTP client and flood limiter) and the SQS
  transport live at module level, created on first use, for every invocation of the instance.
- **Pauses.** A bot-wide pause is waited out until the function's remaining time less a
  margin; a flood pause known to last longer is not waited for. Either way the held messages
  go back with the rest of the pause as their visibility, and are reported.
- **Configuration** is the worker's (botqueue.config); a misconfiguration raises
  ConfigurationError, one line, and Lambda fails the whole batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .batch import DEADLINE_MARGIN_SECONDS
from .records import BatchResponse, LambdaContext
from .runtime import LambdaRuntime

__all__ = [
    "DEADLINE_MARGIN_SECONDS",
    "BatchResponse",
    "LambdaContext",
    "LambdaRuntime",
    "handler",
    "reset",
    "runtime",
]

_runtime: LambdaRuntime | None = None


def runtime() -> LambdaRuntime:
    """The instance's runtime, shared by its warm invocations (created on first use)."""
    global _runtime
    if _runtime is None:
        _runtime = LambdaRuntime()
    return _runtime


def handler(event: Mapping[str, Any], context: LambdaContext | None) -> BatchResponse:
    """Process an SQS event; return the partial batch response (messages to retry).

    Raises:
        ConfigurationError: a setting is missing or malformed; the whole batch fails.
        FatalError: the bot token was refused mid-batch; the whole batch fails.
    """
    return runtime().invoke(event, context)


def reset() -> None:
    """Close and forget the runtime (tests, tools): the next invocation starts cold."""
    global _runtime
    current, _runtime = _runtime, None
    if current is not None:
        current.close()
