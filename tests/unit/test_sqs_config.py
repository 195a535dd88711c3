"""The SQS transport's pure parts: endpoint and credential resolution, batch bookkeeping."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from botqueue.errors import ConfigurationError
from botqueue.transports import OutgoingMessage, SqsTransport, open_transport
from botqueue.transports.base import MAX_MESSAGE_BYTES
from botqueue.transports.sqs_batch import message_size, run_batch, size_batches, whole_seconds
from botqueue.transports.sqs_client import renew_attempt_id, resolve_client_config

ENV = ("USE_LOCALSTACK", "SQS_ENDPOINT", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def test_localstack_uses_the_spec_endpoint_and_dummy_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USE_LOCALSTACK", "true")
    config = resolve_client_config("http://localhost:4566/000000000000/bot-operations.fifo")
    assert config.endpoint_url == "http://localhost:4566"
    assert config.credentials == ("test", "test")
    assert config.region == "us-east-1"
    monkeypatch.setenv("SQS_ENDPOINT", "http://127.0.0.1:4999")
    assert resolve_client_config(None).endpoint_url == "http://127.0.0.1:4999"


def test_configured_credentials_win_over_localstack_dummies(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("USE_LOCALSTACK", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    assert resolve_client_config(None).credentials is None


def test_an_aws_queue_url_gives_its_region_and_the_standard_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    config = resolve_client_config("https://sqs.eu-west-1.amazonaws.com/123456789012/q.fifo")
    assert (config.endpoint_url, config.region, config.credentials) == (None, "eu-west-1", None)
    assert resolve_client_config(None).region == "us-west-2"


def test_another_host_is_its_own_endpoint() -> None:
    config = resolve_client_config("http://127.0.0.1:5000/123456789012/q.fifo")
    assert config.endpoint_url == "http://127.0.0.1:5000"
    assert config.credentials is None


def test_sqs_endpoint_applies_without_localstack(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQS_ENDPOINT", "https://vpce-1.sqs.us-east-1.vpce.amazonaws.com")
    config = resolve_client_config("https://sqs.us-east-1.amazonaws.com/1/q.fifo")
    assert config.endpoint_url == "https://vpce-1.sqs.us-east-1.vpce.amazonaws.com"


def test_open_transport_chooses_sqs_by_url() -> None:
    transport = open_transport(
        "https://sqs.us-east-1.amazonaws.com/1/q.fifo",
        "https://sqs.us-east-1.amazonaws.com/1/q-dlq.fifo",
        visibility_timeout=12,
    )
    assert isinstance(transport, SqsTransport)
    assert transport.visibility_timeout == 12
    with pytest.raises(ConfigurationError, match="BOT_OPERATIONS_DLQ_URL"):
        open_transport("https://sqs.us-east-1.amazonaws.com/1/q.fifo", "sqlite:///dlq.db")
    with pytest.raises(ConfigurationError, match="BOT_OPERATIONS_QUEUE_URL"):
        open_transport("https://sqs.us-east-1.amazonaws.com/")


def test_whole_seconds_round_up_and_clamp() -> None:
    assert [whole_seconds(s, 20) for s in (0, 0.01, 0.5, 1.0, 1.2, 20, 25)] == [
        0,
        1,
        1,
        1,
        2,
        20,
        20,
    ]
    assert whole_seconds(-3, 20) == 0


def test_size_batches_keep_order_and_both_limits() -> None:
    assert size_batches([1] * 23) == [list(range(10)), list(range(10, 20)), [20, 21, 22]]
    third = MAX_MESSAGE_BYTES // 3
    assert size_batches([third] * 4) == [[0, 1, 2], [3]]
    assert message_size(OutgoingMessage("ab", "g", "d", {"k": "vv"})) == 2 + 1 + 6 + 2


class FakeBatch:
    """Answers batch calls from a script of {entry id: failure code} per call."""

    def __init__(self, script: list[Mapping[str, str]]) -> None:
        self.script = script
        self.calls: list[list[str]] = []

    async def __call__(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        failing = self.script[len(self.calls)] if len(self.calls) < len(self.script) else {}
        self.calls.append([entry["Id"] for entry in entries])
        return {
            "Successful": [{"Id": e["Id"]} for e in entries if e["Id"] not in failing],
            "Failed": [
                {"Id": e["Id"], "Code": failing[e["Id"]], "SenderFault": False}
                for e in entries
                if e["Id"] in failing
            ],
        }


async def no_sleep(_: float) -> None:
    return None


async def test_run_batch_retries_transient_entries_only() -> None:
    call = FakeBatch([{"1": "InternalError", "2": "InvalidParameterValue"}])
    results = await run_batch(call, [{}, {}, {}], sleep=no_sleep)
    assert call.calls == [["0", "1", "2"], ["1"]]
    assert [r.error is None for r in results] == [True, True, False]
    assert "InvalidParameterValue" in (results[2].error or "")


async def test_run_batch_gives_up_after_its_attempts() -> None:
    call = FakeBatch([{"0": "RequestThrottled"}] * 10)
    (result,) = await run_batch(call, [{}], sleep=no_sleep)
    assert len(call.calls) == 5
    assert result.error and "RequestThrottled" in result.error


async def test_run_batch_never_lets_a_retry_overtake_its_group() -> None:
    call = FakeBatch([{"0": "InternalError", "2": "InternalError"}])
    entries = [{"G": "a"}, {"G": "a"}, {"G": "b"}]
    results = await run_batch(call, entries, group_of=lambda e: str(e["G"]), sleep=no_sleep)
    assert call.calls == [["0", "1", "2"], ["2"]]
    assert results[0].error and results[1].error is None and results[2].error is None


class FakeResponse:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


@pytest.mark.parametrize(
    ("status", "renewed"), [(400, True), (403, True), (500, False), (503, False)]
)
def test_renew_attempt_id_only_after_a_refusal(status: int, renewed: bool) -> None:
    request = {"body": json.dumps({"QueueUrl": "q", "ReceiveRequestAttemptId": "old"}).encode()}
    renew_attempt_id(request, (FakeResponse(status), {}))
    assert (json.loads(request["body"])["ReceiveRequestAttemptId"] != "old") is renewed
    network_error = {"body": json.dumps({"ReceiveRequestAttemptId": "old"}).encode()}
    renew_attempt_id(network_error, None)
    assert json.loads(network_error["body"])["ReceiveRequestAttemptId"] == "old"
