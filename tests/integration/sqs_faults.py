"""Counting and fault injection on a real aiobotocore client, through botocore's own events.

``before-send`` fires once per HTTP attempt, after botocore has built and signed the request:
a handler that returns a response short-circuits the network, one that raises looks like a
network error, so botocore's real retry machinery runs against real servers.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.awsrequest import AioAWSResponse
from botocore.exceptions import EndpointConnectionError


class RequestCounter:
    """Counts HTTP requests by SQS operation (retries included)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        self.counts[event_name.rsplit(".", 1)[-1]] += 1

    def attach(self, client: Any) -> RequestCounter:
        """Start counting the client's requests."""
        client.meta.events.register("before-send.sqs", self)
        return self

    @property
    def total(self) -> int:
        """All requests so far."""
        return sum(self.counts.values())


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read(self) -> bytes:
        return self.data


def error_response(status: int, code: str, message: str = "injected") -> AioAWSResponse:
    """An SQS JSON-protocol error response."""
    body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
    headers = {"content-type": "application/x-amz-json-1.0", "x-amzn-query-error": f"{code};Sender"}
    return AioAWSResponse("http://injected", status, headers, _Body(body))


@dataclass(eq=False)  # botocore keeps handlers in a dict: hashable by identity
class Faults:
    """For one operation, answers the first ``failures`` attempts with ``make()`` and records
    every attempt's request body."""

    operation: str
    failures: int
    make: Callable[[], AioAWSResponse | None]
    bodies: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, request: Any, event_name: str, **_: Any) -> AioAWSResponse | None:
        if not event_name.endswith("." + self.operation):
            return None
        self.bodies.append(json.loads(request.body))
        if len(self.bodies) <= self.failures:
            return self.make()
        return None

    def attach(self, client: Any) -> Faults:
        """Install on a client."""
        client.meta.events.register("before-send.sqs", self)
        return self


def throttled() -> AioAWSResponse:
    """SQS refusing a request for its rate."""
    return error_response(400, "RequestThrottled", "Rate exceeded")


def network_error() -> AioAWSResponse | None:
    """A connection that could not be made."""
    raise EndpointConnectionError(endpoint_url="http://injected")


def fail_entries(
    client: Any, method: str, failures: dict[int, tuple[str, bool]], calls: list[list[str]]
) -> None:
    """Wrap a batch method: on its first call, the entries at these positions are not sent
    and come back Failed with (Code, SenderFault); every call's entry ids land in ``calls``."""
    original: Callable[..., Awaitable[dict[str, Any]]] = getattr(client, method)

    async def wrapper(**kwargs: Any) -> dict[str, Any]:
        entries = kwargs["Entries"]
        calls.append([entry["Id"] for entry in entries])
        if len(calls) > 1:
            return await original(**kwargs)
        failing = {entries[i]["Id"]: why for i, why in failures.items()}
        kept = [entry for entry in entries if entry["Id"] not in failing]
        response = await original(**{**kwargs, "Entries": kept}) if kept else {}
        response.setdefault("Successful", [])
        response["Failed"] = [
            {"Id": entry_id, "Code": code, "SenderFault": sender, "Message": "injected"}
            for entry_id, (code, sender) in failing.items()
        ]
        return response

    setattr(client, method, wrapper)
