"""The SQS client: region, endpoint and credentials, timeouts, retries, and error translation.

Throttling and network errors are retried by botocore's "standard" retry mode (exponential
backoff with jitter, a retry quota, the same request body each time, so a retried send keeps
its deduplication id). We chose it over "adaptive", whose client-side rate limiter is shared
by every operation of the client: one throttled receive would also slow the deletes that free
the queue. The one thing botocore cannot know is that a ReceiveRequestAttemptId must be
renewed after a refused receive; ``renew_attempt_id`` does that.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import AioSession  # type: ignore[import-untyped]
from botocore.exceptions import (  # type: ignore[import-untyped]
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
)

from ..config import load_settings
from ..errors import ConfigurationError, TransportError

LOCALSTACK_ENDPOINT = "http://localhost:4566"
"""The endpoint USE_LOCALSTACK=true uses when SQS_ENDPOINT is not set (the spec's)."""
LONG_POLL_SECONDS = 20
"""SQS's longest long poll (WaitTimeSeconds)."""
READ_TIMEOUT_SECONDS = LONG_POLL_SECONDS + 10
"""HTTP read timeout: above the long poll, so an idle 20 s poll is never cut off."""
CONNECT_TIMEOUT_SECONDS = 5
"""TCP connect timeout; a connection that cannot be made is retried like any network error."""
MAX_ATTEMPTS = 8
"""Attempts per request in botocore's standard mode (backoff doubles from ~1 s, capped at 20 s)."""
RECEIVE_NETWORK_ATTEMPTS = 2
"""Attempts of a ReceiveMessage that fails on the network (no answer at all) before the error
goes to the caller. The worker's receive loop retries every 2 s at most, so a queue back from
an outage is polled within seconds, not after botocore's backoff of up to 20 s."""
MAX_VISIBILITY_SECONDS = 43200
"""SQS's longest visibility timeout (12 hours)."""
MAX_POOL_CONNECTIONS = 50
"""A long poll, deletes, visibility changes and dead letters run at once on one client."""

_AWS_HOST = re.compile(
    r"^(?:sqs\.)?([a-z]{2}(?:-[a-z]+)+-\d)\.(?:queue\.)?amazonaws\.com(?:\.cn)?$"
)


def check_queue_url(url: str, name: str) -> str:
    """Return ``url`` if it looks like an SQS queue URL (http(s), with a queue path)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or not parsed.path.strip("/"):
        raise ConfigurationError(f"{name} is not an SQS queue URL: {url!r}")
    return url


@dataclass(frozen=True, slots=True)
class SqsClientConfig:
    """Where and as whom to reach SQS; ``credentials`` None means the standard AWS chain."""

    region: str
    endpoint_url: str | None = None
    credentials: tuple[str, str] | None = None
    max_attempts: int = MAX_ATTEMPTS


def resolve_client_config(
    queue_url: str | None,
    *,
    region: str | None = None,
    endpoint_url: str | None = None,
    use_localstack: bool | None = None,
) -> SqsClientConfig:
    """Client settings from the arguments, else AWS_REGION / USE_LOCALSTACK / SQS_ENDPOINT.

    The endpoint is, in order: LocalStack's (SQS_ENDPOINT or http://localhost:4566) when
    USE_LOCALSTACK is true; SQS_ENDPOINT; the queue URL's own origin when it is not an AWS
    host (moto, ElasticMQ); otherwise the region's AWS endpoint. An AWS queue URL's region
    wins over AWS_REGION, since requests must be signed for the queue's region.
    """
    settings = load_settings()
    localstack = settings.use_localstack if use_localstack is None else use_localstack
    endpoint = endpoint_url or settings.sqs_endpoint
    if localstack:
        endpoint = endpoint or LOCALSTACK_ENDPOINT
    host = urlparse(queue_url or "").hostname or ""
    aws_host = _AWS_HOST.match(host)
    if endpoint is None and queue_url and not aws_host:
        parsed = urlparse(queue_url)
        endpoint = f"{parsed.scheme}://{parsed.netloc}"
    chosen_region = region or (aws_host.group(1) if aws_host else settings.aws_region)
    credentials = None
    # LocalStack accepts any key; "test" maps to its default account 000000000000. Only
    # explicit configuration overrides it, so no lookup ever reaches an instance metadata host.
    if localstack and not (os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")):
        credentials = ("test", "test")
    return SqsClientConfig(chosen_region, endpoint, credentials)


def create_client(config: SqsClientConfig) -> Any:
    """An aiobotocore SQS client context (``async with``) with our timeouts and retries."""
    session = AioSession()
    keys: dict[str, str] = {}
    if config.credentials is not None:
        keys = {
            "aws_access_key_id": config.credentials[0],
            "aws_secret_access_key": config.credentials[1],
        }
    botocore_config = AioConfig(
        region_name=config.region,
        retries={"mode": "standard", "total_max_attempts": config.max_attempts},
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=READ_TIMEOUT_SECONDS,
        max_pool_connections=MAX_POOL_CONNECTIONS,
    )
    return session.create_client(
        "sqs", endpoint_url=config.endpoint_url, config=botocore_config, **keys
    )


def register_hooks(client: Any) -> None:
    """Attach our botocore event handlers to a freshly opened client."""
    client.meta.events.register("needs-retry.sqs.ReceiveMessage", renew_attempt_id)
    client.meta.events.register("needs-retry.sqs.ReceiveMessage", end_receive_retries)


def new_attempt_id() -> str:
    """A fresh ReceiveRequestAttemptId."""
    return uuid.uuid4().hex


def renew_attempt_id(request_dict: dict[str, Any], response: Any = None, **_: Any) -> None:
    """Before botocore retries a receive that SQS refused (4xx: throttled), give it a new
    ReceiveRequestAttemptId: SQS rejects the old one as "not retryable" after a throttle.

    After a network error or a 5xx the outcome is unknown, and the same id is exactly what
    makes SQS hand back the same messages instead of hiding them for a visibility timeout.
    """
    if response is None:
        return
    status = response[0].status_code
    if not 400 <= status < 500:
        return
    body = json.loads(request_dict["body"])
    if "ReceiveRequestAttemptId" in body:
        body["ReceiveRequestAttemptId"] = new_attempt_id()
        request_dict["body"] = json.dumps(body).encode()


def end_receive_retries(
    attempts: int, caught_exception: BaseException | None = None, **_: Any
) -> None:
    """Stop botocore retrying a receive that got no answer after RECEIVE_NETWORK_ATTEMPTS.

    Raising here is how a handler ends the retries (returning None would let the standard
    handler retry on). Answers (throttling, 5xx) keep botocore's standard retries.
    """
    if caught_exception is not None and attempts >= RECEIVE_NETWORK_ATTEMPTS:
        raise caught_exception


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore error ('' when it has none)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Turn botocore errors raised inside into TransportError / ConfigurationError."""
    try:
        yield
    except (NoCredentialsError, NoRegionError) as error:
        raise ConfigurationError(f"SQS {what}: {error}") from error
    except ClientError as error:
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "")
        if code.endswith("NonExistentQueue") or code == "QueueDoesNotExist":
            raise ConfigurationError(f"SQS {what}: the queue does not exist ({message})") from error
        raise TransportError(f"SQS {what} failed: {code}: {message}") from error
    except BotoCoreError as error:
        raise TransportError(f"SQS {what} failed: {error}") from error
