"""Real `botqueue worker` processes on one embedded database: SIGTERM and sharing a file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from botqueue import SyncBotQueueProducer
from botqueue.operations import InviteUser, RemoveUser

ROOT = Path(__file__).resolve().parents[2]


def start_worker(db_url: str, log: Path, *args: str, delay: float = 0.0) -> subprocess.Popen[str]:
    env = dict(
        os.environ,
        BOT_OPERATIONS_QUEUE_URL=db_url,
        BOTQUEUE_TEST_LOG=str(log),
        BOTQUEUE_TEST_DELAY=str(delay),
        BOTQUEUE_LOG_LEVEL="warning",
    )
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "botqueue",
            "worker",
            "--service",
            "tests.services:FileCountingService",
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def stats(db_url: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-m", "botqueue", "stats", "--json", "--queue-url", db_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, float] = json.loads(result.stdout)
    return figures


def test_sigterm_with_work_in_flight_loses_nothing(db_url: str, tmp_path: Path) -> None:
    ops = [
        InviteUser(
            user_id=100 + n % 8, channel_id="@vip_room", subscription_id=f"t{n}", order_id="o"
        )
        for n in range(40)
    ]
    with SyncBotQueueProducer(db_url) as producer:
        producer.enqueue_many(ops)
    log = tmp_path / "done.log"
    worker = start_worker(db_url, log, "--concurrency", "4", "--grace-period", "20", delay=0.4)
    deadline = time.monotonic() + 60
    while len(lines(log)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lines(log), "the worker processed nothing"
    worker.send_signal(signal.SIGTERM)
    _, stderr = worker.communicate(timeout=60)
    assert worker.returncode == 0, stderr
    assert "Traceback" not in stderr
    done = lines(log)
    assert len(done) == len(set(done))  # nothing ran twice
    assert len(done) < len(ops)  # it really stopped with work left
    figures = stats(db_url)
    # Every operation is either done (and deleted) or back on the queue, visible at once.
    assert figures["visible"] == len(ops) - len(done)
    assert figures["in_flight"] == 0
    assert figures["dead_letters"] == 0


def test_two_workers_share_one_database_exactly_once(db_url: str, tmp_path: Path) -> None:
    total = 2000
    ops = [
        RemoveUser(
            user_id=1 + n % 250,
            channel_id=f"-100{1 + n % 7}",
            subscription_id=f"w{n}",
            reason="expiry",
        )
        for n in range(total)
    ]
    with SyncBotQueueProducer(db_url) as producer:
        assert len(producer.enqueue_many(ops)) == total
    # Both append to one log (small O_APPEND writes are atomic), so order across them shows.
    log = tmp_path / "shared.log"
    workers = [start_worker(db_url, log, "--drain", "--wait-time", "1") for _ in range(2)]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr
    done = lines(log)
    counts = Counter(done)
    assert set(counts) == {op.subscription_id for op in ops}
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1][:5]
    position = {sub: index for index, sub in enumerate(done)}
    for group in {op.group_id for op in ops}:
        mine = [position[op.subscription_id] for op in ops if op.group_id == group]
        assert mine == sorted(mine), f"group {group} ran out of order"
    figures = stats(db_url)
    assert (figures["visible"], figures["in_flight"], figures["dead_letters"]) == (0, 0, 0)
