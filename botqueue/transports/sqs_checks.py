"""The checks a worker runs on its SQS queue's attributes when it starts.

Kept free of aiobotocore imports: a worker on the embedded queue calls check_at_start too, and
must not pay for loading the AWS SDK.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import structlog

from ..operations import MAX_RETRIES_LIMIT
from .base import Transport

if TYPE_CHECKING:
    from .sqs import SqsTransport

log = structlog.get_logger("botqueue.worker")

MIN_MAX_RECEIVE_COUNT = MAX_RETRIES_LIMIT + 2
"""22: a message with maxRetries 20 needs 21 receives before the worker dead-letters it, and a
hand-back at shutdown costs a receive too; anything lower lets SQS pre-empt the worker, which
would then never record why the message failed."""


async def queue_warnings(transport: SqsTransport, *, grace_period: float) -> list[str]:
    """One line for each queue attribute that contradicts how the worker runs.

    Raises:
        ConfigurationError: the queue does not exist, or no DLQ is configured or derivable.
    """
    attributes = await transport.attributes(transport.url)
    name = transport.url.rstrip("/").rsplit("/", 1)[-1]
    warnings = []
    if attributes.get("FifoQueue") != "true":
        warnings.append(f"queue {name} is not FIFO: per-group order and deduplication do not hold")
    dlq_arn = (await transport.attributes(await transport.dlq_url(), ["QueueArn"]))["QueueArn"]
    raw_policy = attributes.get("RedrivePolicy")
    policy = json.loads(raw_policy) if raw_policy else {}
    target = policy.get("deadLetterTargetArn")
    if target != dlq_arn:
        warnings.append(
            f"queue {name}: the redrive target is {target or 'not set'}, not the configured DLQ "
            f"{dlq_arn}: messages that crash the worker would not reach it"
        )
    count = int(policy.get("maxReceiveCount", 0) or 0)
    if policy and count < MIN_MAX_RECEIVE_COUNT:
        warnings.append(
            f"queue {name}: maxReceiveCount {count} would pre-empt retries (a message may carry "
            f"maxRetries up to {MAX_RETRIES_LIMIT}); use at least {MIN_MAX_RECEIVE_COUNT}: "
            "botqueue setup --fix"
        )
    visibility = int(attributes.get("VisibilityTimeout", 30))
    if visibility < grace_period:
        warnings.append(
            f"queue {name}: VisibilityTimeout {visibility}s is shorter than the grace period "
            f"{grace_period:g}s: a consumer that relies on the queue's default may see a message "
            "again while a stopping worker still runs it"
        )
    return warnings


async def check_at_start(transport: Transport, *, grace_period: float) -> list[str]:
    """For the worker at start: log each warning about an SQS queue in one line and return them
    ([] for other transports)."""
    # An SqsTransport exists only if its module was imported; never import it from here.
    sqs = sys.modules.get(f"{__package__}.sqs")
    if sqs is None or not isinstance(transport, sqs.SqsTransport):
        return []
    warnings = await queue_warnings(transport, grace_period=grace_period)
    for warning in warnings:
        log.warning(warning)
    return warnings
