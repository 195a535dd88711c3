"""The library reads the configuration it documents: a producer or consumer built with no
queue URL uses BOT_OPERATIONS_QUEUE_URL and BOT_OPERATIONS_DLQ_URL (and AWS_REGION,
SQS_ENDPOINT, USE_LOCALSTACK), exactly as ``botqueue worker`` does; never ./botqueue.db
behind the application's back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from botqueue import ConfigurationError
from botqueue.transports import SqliteTransport
from tests.integration.sqs_servers import SqsServer, create_queue_pair, delete_queue_pair

ROOT = Path(__file__).resolve().parents[2]

# Run in a fresh process whose only configuration is its environment; prints what it sent.
PRODUCER_SCRIPT = """
import asyncio, json, sys
from botqueue import BotQueueProducer, SyncBotQueueProducer

async def main():
    async with BotQueueProducer() as producer:
        first = await producer.enqueue_invite_user(42, "-1001", "sub-async", "o-1")
    return first

first = asyncio.run(main())
with SyncBotQueueProducer() as producer:
    second = producer.enqueue_remove_user(42, "-1001", "sub-sync", "refund")
print(json.dumps([first, second]))
"""

CONSUMER_SCRIPT = """
import asyncio, json
from botqueue import BotQueueConsumer

class Service:
    seen = []
    async def invite_user(self, op): self.seen.append(op.subscription_id)
    async def remove_user(self, op): self.seen.append(op.subscription_id)
    async def verify_permissions(self, op): self.seen.append(op.channel_id)

async def main():
    service = Service()
    consumer = BotQueueConsumer(service, wait_time_seconds=1, drain=True)
    await asyncio.wait_for(consumer.run(), 60)
    await consumer.transport.aclose()
    print(json.dumps(service.seen))

asyncio.run(main())
"""


def run_python(script: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``script`` in a new interpreter with exactly ``env`` (plus what Python itself needs)."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), "BOTQUEUE_LOG_LEVEL": "warning", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_no_argument_producer_and_consumer_use_the_configured_embedded_queue(
    tmp_path: Path,
) -> None:
    queue = tmp_path / "configured.db"
    dlq = tmp_path / "configured-dlq.db"
    workdir = tmp_path / "app"
    workdir.mkdir()
    env = {
        "BOT_OPERATIONS_QUEUE_URL": f"sqlite:///{queue}",
        "BOT_OPERATIONS_DLQ_URL": f"sqlite:///{dlq}",
    }
    sent = run_python(PRODUCER_SCRIPT, env, workdir)
    assert sent.returncode == 0, sent.stderr
    assert len(json.loads(sent.stdout.splitlines()[-1])) == 2
    assert not (workdir / "botqueue.db").exists()  # the default file was never touched
    async with SqliteTransport(f"sqlite:///{queue}", f"sqlite:///{dlq}") as transport:
        assert (await transport.stats()).visible == 2

    consumed = run_python(CONSUMER_SCRIPT, env, workdir)
    assert consumed.returncode == 0, consumed.stderr
    assert sorted(json.loads(consumed.stdout.splitlines()[-1])) == ["sub-async", "sub-sync"]
    assert not (workdir / "botqueue.db").exists()


async def test_a_no_argument_producer_and_consumer_use_the_configured_sqs_queue(
    moto_server: SqsServer, tmp_path: Path
) -> None:
    pair = await create_queue_pair(moto_server, "cfg")
    try:
        env = {
            **moto_server.env(),
            "BOT_OPERATIONS_QUEUE_URL": pair.url,
            "BOT_OPERATIONS_DLQ_URL": pair.dlq_url,
        }
        sent = run_python(PRODUCER_SCRIPT, env, tmp_path)
        assert sent.returncode == 0, sent.stderr
        assert len(json.loads(sent.stdout.splitlines()[-1])) == 2
        assert not (tmp_path / "botqueue.db").exists()
        client = moto_server.boto3_client()
        attributes = client.get_queue_attributes(
            QueueUrl=pair.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "2"

        consumed = run_python(CONSUMER_SCRIPT, env, tmp_path)
        assert consumed.returncode == 0, consumed.stderr
        assert sorted(json.loads(consumed.stdout.splitlines()[-1])) == ["sub-async", "sub-sync"]
        assert not (tmp_path / "botqueue.db").exists()
    finally:
        await delete_queue_pair(moto_server, pair)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("BOT_OPERATIONS_QUEUE_URL", "redis://nowhere/0", "BOT_OPERATIONS_QUEUE_URL"),
        ("USE_LOCALSTACK", "perhaps", "USE_LOCALSTACK"),
    ],
)
def test_an_invalid_setting_raises_configuration_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, named: str
) -> None:
    from botqueue import BotQueueConsumer, BotQueueProducer, SyncBotQueueProducer

    monkeypatch.setenv(variable, value)
    for build in (
        BotQueueProducer,
        SyncBotQueueProducer,
        lambda: BotQueueConsumer(object()),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigurationError, match=named):
            build()
