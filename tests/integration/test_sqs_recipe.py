"""The spec's LocalStack recipe, unchanged: its create-queue commands and environment
variables, then ``botqueue enqueue`` and ``botqueue worker`` as separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from tests.integration.sqs_servers import SqsServer

ROOT = Path(__file__).resolve().parents[2]


def recipe_env(server: SqsServer, home: Path) -> dict[str, str]:
    """The spec's four variables, with the test server's port in place of 4566, and no AWS
    credentials at all: USE_LOCALSTACK supplies LocalStack's."""
    port = urlparse(server.endpoint).port
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(
        {
            "HOME": str(home),
            "AWS_EC2_METADATA_DISABLED": "true",  # a guard: nothing may reach for an instance
            "BOTQUEUE_LOG_LEVEL": "warning",
            "USE_LOCALSTACK": "true",
            "SQS_ENDPOINT": f"http://localhost:{port}",
            "BOT_OPERATIONS_QUEUE_URL": f"http://localhost:{port}/000000000000/bot-operations.fifo",
            "BOT_OPERATIONS_DLQ_URL": f"http://localhost:{port}/000000000000/bot-operations-dlq.fifo",
        }
    )
    return env


def botqueue(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botqueue", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_the_spec_recipe_works_unchanged(localstack_server: SqsServer, tmp_path: Path) -> None:
    client = localstack_server.boto3_client()
    # aws --endpoint-url=http://localhost:4566 sqs create-queue --queue-name ... --attributes ...
    main = client.create_queue(
        QueueName="bot-operations.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )
    dlq = client.create_queue(QueueName="bot-operations-dlq.fifo", Attributes={"FifoQueue": "true"})
    env = recipe_env(localstack_server, tmp_path)
    log = tmp_path / "done.log"
    try:
        for n in range(6):
            enqueued = botqueue(
                env,
                "enqueue",
                "invite",
                "--user-id",
                str(100 + n % 2),
                "--channel",
                "@recipe_room",
                "--subscription-id",
                f"sub-{n}",
                "--order-id",
                f"order-{n}",
            )
            assert enqueued.returncode == 0, enqueued.stderr
        worker = botqueue(
            {**env, "BOTQUEUE_TEST_LOG": str(log)},
            "worker",
            "--drain",
            "--wait-time",
            "1",  # --drain checks for an empty queue between polls; keep the last poll short
            "--service",
            "tests.services:FileCountingService",
        )
        assert worker.returncode == 0, worker.stderr
        assert "Traceback" not in worker.stderr
        done = log.read_text().split()
        assert sorted(done) == sorted(f"sub-{n}" for n in range(6))
        for user in range(2):
            mine = [f"sub-{n}" for n in range(6) if n % 2 == user]
            assert [sub for sub in done if sub in mine] == mine  # each user's order kept
        stats = botqueue(env, "stats", "--json")
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["visible"] == 0
        listed = botqueue(env, "dlq", "list")
        assert listed.returncode == 0 and "0 dead letter(s)" in listed.stdout
    finally:
        client.delete_queue(QueueUrl=main["QueueUrl"])
        client.delete_queue(QueueUrl=dlq["QueueUrl"])
