"""Celery's SQS transport for bench/bench_sqs.py; runs in .venv-bench-celery, never in .venv.

As a script it sends ``-n`` tasks to a FIFO queue, starts ``celery worker`` (default pool) on it,
waits until every task ran and prints ``{"send_seconds", "drain_seconds", "requests"}`` as JSON.
As a module it is the Celery app the worker loads. Both count every SQS call at the client:
boto3's (sends, deletes) and kombu's own asynchronous ones (receives over pycurl).
Celery sends each task alone with MessageGroupId "default" and a random deduplication id.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from celery import Celery, signals

COUNTS: Counter[str] = Counter()
POOL: list[str] = []
"""Celery's default pool (prefork, one process per core), as the comparison is "its defaults"."""
BODY = json.dumps(
    {
        "operationType": "INVITE_USER",
        "userId": 1,
        "channelId": "-1001",
        "subscriptionId": "s",
        "orderId": "o",
    }
)


def _count_requests() -> None:
    import botocore.client
    from kombu.asynchronous.aws.sqs.connection import AsyncSQSConnection

    sync_call = botocore.client.BaseClient._make_api_call
    async_call = AsyncSQSConnection.make_request

    def counted_sync(self: Any, operation_name: str, params: Any) -> Any:
        COUNTS[operation_name] += 1
        return sync_call(self, operation_name, params)

    def counted_async(self: Any, operation_name: str, *args: Any, **kwargs: Any) -> Any:
        COUNTS[operation_name] += 1
        return async_call(self, operation_name, *args, **kwargs)

    botocore.client.BaseClient._make_api_call = counted_sync
    AsyncSQSConnection.make_request = counted_async


def make_app(endpoint: str, queue_url: str, polling_interval: float | None) -> Celery:
    """A Celery app on one predefined FIFO queue of the LocalStack at ``endpoint``."""
    queue = queue_url.rsplit("/", 1)[-1]
    options: dict[str, Any] = {
        "region": "us-east-1",
        "is_secure": False,
        "predefined_queues": {
            queue: {"url": queue_url, "access_key_id": "test", "secret_access_key": "test"}
        },
    }
    if polling_interval is not None:
        options["polling_interval"] = polling_interval
    app = Celery("bench", broker=f"sqs://test:test@{urlparse(endpoint).netloc}")
    app.conf.update(
        broker_transport_options=options,
        task_default_queue=queue,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )

    @app.task(name="bench.noop")
    def noop(body: str) -> None:
        # One line per task, with its time: the driver counts them and times the drain.
        with open(os.environ["BENCH_DONE_FILE"], "a") as done:
            done.write(f"{time.time()}\n")

    return app


_count_requests()
if "BENCH_QUEUE_URL" in os.environ:
    interval = os.environ.get("BENCH_POLLING_INTERVAL")
    app = make_app(
        os.environ["BENCH_ENDPOINT"],
        os.environ["BENCH_QUEUE_URL"],
        float(interval) if interval else None,
    )

    @signals.worker_shutdown.connect
    def _dump_counts(**_: Any) -> None:
        Path(os.environ["BENCH_COUNTS_FILE"]).write_text(json.dumps(COUNTS))


def main() -> None:
    """Send, run a worker until the backlog is done, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--polling-interval", type=float)
    args = parser.parse_args()
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-celery-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        BENCH_ENDPOINT=args.endpoint,
        BENCH_QUEUE_URL=args.queue_url,
        BENCH_DONE_FILE=str(folder / "done"),
        BENCH_COUNTS_FILE=str(folder / "counts.json"),
        BENCH_POLLING_INTERVAL="" if args.polling_interval is None else str(args.polling_interval),
    )
    producer = make_app(args.endpoint, args.queue_url, args.polling_interval)
    started = time.perf_counter()
    for _ in range(args.n):
        producer.send_task("bench.noop", args=(BODY,))
    send_seconds = time.perf_counter() - started
    sent = dict(COUNTS)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "sqs_celery_app",
            "worker",
            *POOL,
            "-l",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=Path(__file__).parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    done_file = folder / "done"
    deadline = time.monotonic() + 3600
    times: list[float] = []
    while len(times) < args.n and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.2)
        times = (
            [float(line) for line in done_file.read_text().split()] if done_file.exists() else []
        )
    worker.send_signal(signal.SIGTERM)
    worker.wait(timeout=60)
    counts = Counter(sent)
    counts.update(json.loads((folder / "counts.json").read_text()))
    # From the first task to the last: the worker's start-up is not part of the drain.
    drain = (times[-1] - times[0]) * len(times) / max(len(times) - 1, 1)
    print(
        json.dumps(
            {
                "send_seconds": send_seconds,
                "drain_seconds": drain,
                "requests": counts,
                "done": len(times),
            }
        )
    )


if __name__ == "__main__":
    main()
