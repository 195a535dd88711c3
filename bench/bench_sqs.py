"""SQS FIFO against LocalStack: botqueue's producer and worker beside plain boto3 loops and
Celery, on the same server, in the same run, requests counted at each client.

    .venv/bin/python bench/bench_sqs.py [-n 10000] [--slow-n 1000] [--celery-n 300]
        [--reps 3] [--groups 1000] [--concurrency 10] [--only NAME,...] [--endpoint URL] [--json]

Every scenario fills a fresh FIFO queue with the same operation bodies (invite/remove, spread
over ``--groups`` message groups), then works through the backlog with a no-op handler; the
rate is operations per second of that drain, the requests are the producer's and the
consumer's together. Scenarios:

    botqueue        BotQueueProducer.enqueue_many + BotQueueConsumer (as ``botqueue worker``)
    boto3-batched   SendMessageBatch of 10, then ReceiveMessage 10 / DeleteMessageBatch: the floor
    boto3-single    SendMessage, ReceiveMessage 1, DeleteMessage, one message at a time
    celery          Celery's SQS transport (kombu) with its defaults (prefork pool)
    celery-0.1s     the same with polling_interval 0.1

Without ``--endpoint`` it starts LocalStack itself (tests/integration/sqs_servers.py: its own
virtualenv .venv-localstack). Celery runs from .venv-bench-celery, created on first use with
``pip install celery[sqs]==5.7.0`` (kombu's SQS transport needs pycurl; if pip has to build it,
``apt-get install libcurl4-openssl-dev`` first). Celery is never a botqueue dependency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the LocalStack launcher lives with the integration tests

import boto3  # noqa: E402
from _common import CountingService  # noqa: E402
from botocore.config import Config  # noqa: E402

from botqueue import (  # noqa: E402
    AnyOperation,
    BotQueueConsumer,
    BotQueueProducer,
    InviteUser,
    RemoveUser,
)
from botqueue.logs import configure_logging  # noqa: E402
from botqueue.transports.sqs import SqsTransport  # noqa: E402
from botqueue.transports.sqs_client import SqsClientConfig, create_client  # noqa: E402
from botqueue.transports.sqs_setup import setup_queues  # noqa: E402

CELERY_VENV = ROOT / ".venv-bench-celery"
CELERY_PACKAGES = ["celery[sqs]==5.7.0"]
SCENARIOS = ["boto3-batched", "botqueue", "boto3-single", "celery", "celery-0.1s"]
CREDENTIALS = ("test", "test")
TARGET_REQUESTS_PER_OP = 0.35
TARGET_RATIO = 0.85


@dataclass
class Result:
    """One scenario's run: operations, phase times and requests by operation name."""

    name: str
    operations: int
    send_seconds: float
    drain_seconds: float
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Operations per second while working through the backlog."""
        return self.operations / self.drain_seconds

    @property
    def per_operation(self) -> float:
        """SQS requests per operation, producer and consumer together."""
        return sum(self.requests.values()) / self.operations


def operations(n: int, groups: int) -> list[AnyOperation]:
    """The same mix for every scenario: invites and removals over ``groups`` (channel, user)."""
    ops: list[AnyOperation] = []
    for i in range(n):
        user, channel = 1 + i % groups, f"-100{1 + i % 50}"
        if i % 3:
            ops.append(
                InviteUser(user_id=user, channel_id=channel, subscription_id=f"s{i}", order_id="o")
            )
        else:
            ops.append(
                RemoveUser(
                    user_id=user, channel_id=channel, subscription_id=f"s{i}", reason="expiry"
                )
            )
    return ops


def boto3_client(endpoint: str, counts: Counter[str]) -> Any:
    """A plain boto3 client that counts its HTTP requests by operation."""
    client = boto3.client(
        "sqs",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS[0],
        aws_secret_access_key=CREDENTIALS[1],
        config=Config(retries={"mode": "standard"}, read_timeout=30),
    )
    client.meta.events.register(
        "before-send.sqs", lambda event_name, **_: counts.update([event_name.rsplit(".", 1)[-1]])
    )
    return client


async def new_queue(endpoint: str) -> tuple[str, str]:
    """A fresh queue and DLQ as ``botqueue setup`` makes them."""
    name = f"bench-{uuid.uuid4().hex[:10]}"
    config = SqsClientConfig("us-east-1", endpoint, CREDENTIALS)
    async with create_client(config) as client:
        report = await setup_queues(client, queue_name=f"{name}.fifo", dlq_name=f"{name}-dlq.fifo")
    return report.queue_url, report.dlq_url


def run_boto3_batched(endpoint: str, url: str, ops: list[AnyOperation]) -> Result:
    """The practical floor: batches of 10 everywhere, one request at a time."""
    counts: Counter[str] = Counter()
    client = boto3_client(endpoint, counts)
    started = time.perf_counter()
    for start in range(0, len(ops), 10):
        entries = [
            {
                "Id": str(i),
                "MessageBody": op.to_json(),
                "MessageGroupId": op.group_id,
                "MessageDeduplicationId": op.deduplication_id(),
            }
            for i, op in enumerate(ops[start : start + 10])
        ]
        client.send_message_batch(QueueUrl=url, Entries=entries)
    sent = time.perf_counter()
    done = 0
    while done < len(ops):
        messages = client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=20,
            MessageSystemAttributeNames=[
                "ApproximateReceiveCount",
                "SentTimestamp",
                "MessageGroupId",
            ],
        ).get("Messages", [])
        if messages:
            client.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(messages)
                ],
            )
            done += len(messages)
    return Result(
        "boto3-batched", len(ops), sent - started, time.perf_counter() - sent, dict(counts)
    )


def run_boto3_single(endpoint: str, url: str, ops: list[AnyOperation]) -> Result:
    """One message per request, as most hand-written SQS consumers do."""
    counts: Counter[str] = Counter()
    client = boto3_client(endpoint, counts)
    started = time.perf_counter()
    for op in ops:
        client.send_message(
            QueueUrl=url,
            MessageBody=op.to_json(),
            MessageGroupId=op.group_id,
            MessageDeduplicationId=op.deduplication_id(),
        )
    sent = time.perf_counter()
    done = 0
    while done < len(ops):
        for message in client.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=20,
            MessageSystemAttributeNames=[
                "ApproximateReceiveCount",
                "SentTimestamp",
                "MessageGroupId",
            ],
        ).get("Messages", []):
            client.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            done += 1
    return Result(
        "boto3-single", len(ops), sent - started, time.perf_counter() - sent, dict(counts)
    )


async def run_botqueue(
    endpoint: str, urls: tuple[str, str], ops: list[AnyOperation], concurrency: int
) -> Result:
    """botqueue's producer, then its consumer with the worker's defaults (20 s long polls)."""
    counts: Counter[str] = Counter()
    config = SqsClientConfig("us-east-1", endpoint, CREDENTIALS)
    producer_side = SqsTransport(*urls, client_config=config)
    consumer_side = SqsTransport(*urls, client_config=config)
    for transport in (producer_side, consumer_side):
        client = await transport.client()
        client.meta.events.register(
            "before-send.sqs",
            lambda event_name, **_: counts.update([event_name.rsplit(".", 1)[-1]]),
        )
    started = time.perf_counter()
    async with BotQueueProducer(producer_side) as producer:
        await producer.enqueue_many(ops)
    sent = time.perf_counter()
    service = CountingService(total=len(ops))
    consumer = BotQueueConsumer(service, consumer_side, concurrency=concurrency)
    await consumer.start()
    await service.done.wait()
    await consumer.acks.flush()  # the last deletes belong to the drain
    drained = time.perf_counter()
    await consumer.stop()
    await producer_side.aclose()
    await consumer_side.aclose()
    return Result("botqueue", len(ops), sent - started, drained - sent, dict(counts))


def ensure_celery_venv() -> Path:
    """.venv-bench-celery's python, installing Celery with its SQS extra when missing."""
    python = CELERY_VENV / "bin" / "python"
    stamp = CELERY_VENV / ".bench-packages"
    if python.exists() and stamp.exists() and stamp.read_text() == " ".join(CELERY_PACKAGES):
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(CELERY_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *CELERY_PACKAGES], check=True)
    stamp.write_text(" ".join(CELERY_PACKAGES))
    return python


def run_celery(
    name: str, endpoint: str, url: str, n: int, polling_interval: float | None
) -> Result:
    """Celery in its own virtualenv: bench/sqs_celery_app.py sends, runs a worker, reports."""
    python = ensure_celery_venv()
    command = [
        str(python),
        str(ROOT / "bench" / "sqs_celery_app.py"),
        "--endpoint",
        endpoint,
        "--queue-url",
        url,
        "-n",
        str(n),
    ]
    if polling_interval is not None:
        command += ["--polling-interval", str(polling_interval)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, timeout=3600)
    figures = json.loads(done.stdout)
    return Result(name, n, figures["send_seconds"], figures["drain_seconds"], figures["requests"])


def run_scenario(name: str, endpoint: str, args: argparse.Namespace) -> Result:
    """Run one scenario on fresh queues."""
    urls = asyncio.run(new_queue(endpoint))
    if name == "botqueue":
        return asyncio.run(
            run_botqueue(endpoint, urls, operations(args.n, args.groups), args.concurrency)
        )
    if name == "boto3-batched":
        return run_boto3_batched(endpoint, urls[0], operations(args.n, args.groups))
    if name == "boto3-single":
        return run_boto3_single(endpoint, urls[0], operations(args.slow_n, args.groups))
    interval = 0.1 if name == "celery-0.1s" else None
    return run_celery(name, endpoint, urls[0], args.celery_n, interval)


def summarize(runs: list[list[Result]]) -> dict[str, dict[str, float]]:
    """Medians per scenario, and botqueue's rate relative to the batched loop in the same rep."""
    names = [r.name for r in runs[0]]
    table: dict[str, dict[str, float]] = {}
    for name in names:
        mine = [r for rep in runs for r in rep if r.name == name]
        table[name] = {
            "operations": mine[0].operations,
            "ops_per_second": statistics.median(r.rate for r in mine),
            "requests_per_op": statistics.median(r.per_operation for r in mine),
            "send_seconds": statistics.median(r.send_seconds for r in mine),
        }
    if "botqueue" in names and "boto3-batched" in names:
        ratios = []
        for rep in runs:
            by_name = {r.name: r for r in rep}
            ratios.append(by_name["botqueue"].rate / by_name["boto3-batched"].rate)
        table["botqueue"]["rate_vs_batched_loop"] = statistics.median(ratios)
    return table


def print_table(table: dict[str, dict[str, float]], reps: int) -> None:
    """A markdown table of the medians."""
    print(f"\nmedians of {reps} repetition(s), LocalStack, no-op handler\n")
    print("| scenario | operations | ops/s (drain) | SQS requests/op | send s |")
    print("|---|---|---|---|---|")
    for name, row in table.items():
        print(
            f"| {name} | {row['operations']:.0f} | {row['ops_per_second']:.0f} | "
            f"{row['requests_per_op']:.3f} | {row['send_seconds']:.2f} |"
        )
    if "rate_vs_batched_loop" in table.get("botqueue", {}):
        ratio, per_op = (
            table["botqueue"]["rate_vs_batched_loop"],
            table["botqueue"]["requests_per_op"],
        )
        print(
            f"\nbotqueue: {ratio:.0%} of the batched boto3 loop's rate (target >= "
            f"{TARGET_RATIO:.0%}); {per_op:.3f} requests/op (target <= {TARGET_REQUESTS_PER_OP})"
        )


def main() -> None:
    """Parse arguments, start LocalStack unless given an endpoint, run, report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "-n", type=int, default=10000, help="operations for botqueue and the batched loop"
    )
    parser.add_argument("--slow-n", type=int, default=1000, help="operations for boto3-single")
    parser.add_argument("--celery-n", type=int, default=300, help="operations for the Celery runs")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    parser.add_argument("--endpoint", help="a running LocalStack (default: start one)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else SCENARIOS
    configure_logging("warning")
    server = None
    if args.endpoint is None:
        from tests.integration.sqs_servers import start_localstack

        server = start_localstack(Path(tempfile.mkdtemp(prefix="bench-localstack-")))
    endpoint = args.endpoint or server.endpoint  # type: ignore[union-attr]
    runs: list[list[Result]] = []
    try:
        for rep in range(args.reps):
            # Rotated, so no scenario always runs first on a fresh server.
            order = chosen[rep % len(chosen) :] + chosen[: rep % len(chosen)]
            results = {name: run_scenario(name, endpoint, args) for name in order}
            runs.append([results[name] for name in chosen])
            for result in runs[-1]:
                print(
                    f"rep {rep + 1}: {result.name:<14} {result.rate:8.0f} ops/s "
                    f"{result.per_operation:.3f} req/op {result.requests}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if server is not None:
            from tests.integration.sqs_servers import stop

            stop(server)
    table = summarize(runs)
    if args.json:
        print(json.dumps({"summary": table, "runs": [[asdict(r) for r in rep] for rep in runs]}))
    else:
        print_table(table, args.reps)


if __name__ == "__main__":
    main()
