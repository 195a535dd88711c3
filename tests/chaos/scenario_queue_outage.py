"""Issue 12, point 2: the queue goes away mid-run and comes back.

LocalStack is stopped for the outage and started again on the same port; the embedded queue's
file system refuses writes (read-only, then full). Throughout, a worker subprocess consumes
and a producer keeps enqueueing; every id the producer reported as sent must end done or
dead-lettered, the worker must log the outage once (not per attempt) and resume quickly, and
each refused producer call must raise a typed botqueue error.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from botqueue.consumer.outage import RECEIVE_RETRY_CAP_SECONDS
from botqueue.transports.sqlite import SqliteTransport
from botqueue.transports.sqs import SqsTransport
from botqueue.transports.sqs_client import RECEIVE_NETWORK_ATTEMPTS, create_client
from botqueue.transports.sqs_setup import setup_queues
from tests.chaos import queue_outage_parts as parts
from tests.chaos.queue_outage_parts import DoneLog, Producing, until
from tests.chaos.scenario import Result, Scenario, Size
from tests.integration.sqs_servers import (
    IN_CI,
    ServerUnavailable,
    SqsServer,
    free_port,
    start_localstack,
    stop,
    unavailable,
)
from tests.integration.worker_process import WorkerProcess

NAME = "queue-outage"
OUTAGE_SECONDS = {"reduced": 8.0, "full": 30.0}
DISK_FAULT_SECONDS = {"reduced": 5.0, "full": 30.0}
PHASE_OPERATIONS = {"reduced": 15, "full": 60}  # sent before the fault, and again after it
BACKLOG = 100  # embedded: queued just before the fault, so the worker's receives must write
RECOVER_LIMIT_SECONDS = 5.0
# The producer's SQS client: 3 attempts (backoff at most 1 + 2 s), as SqsServer configures it.
# A refused call must come back within its retries; the slack covers a loaded machine.
PRODUCER_REFUSAL_LIMIT_SECONDS = 3.0 + 10.0
UNAVAILABLE = "queue unavailable, retrying receives"
AVAILABLE = "queue available again"


def _worker(env: dict[str, str], done: Path, service: str) -> WorkerProcess:
    return WorkerProcess(
        {**env, "BOTQUEUE_TEST_LOG": str(done), "BOTQUEUE_LOG_LEVEL": "info"},
        *("--service", service, "--wait-time", "1", "--visibility-timeout", "4"),
    )


def _events(worker: WorkerProcess) -> list[str]:
    events = []
    for line in worker.stderr:
        try:
            events.append(str(json.loads(line).get("event", "")))
        except (ValueError, AttributeError):
            continue
    return events


def _check_worker_logs(worker: WorkerProcess, where: str) -> str:
    events = _events(worker)
    down, up = events.count(UNAVAILABLE), events.count(AVAILABLE)
    assert worker.returncode is None, f"{where}: the worker died:\n{worker.output()[-3000:]}"
    assert (down, up) == (1, 1), (
        f"{where}: expected one {UNAVAILABLE!r} and one {AVAILABLE!r} line, got {down} and {up}"
    )
    failed = [json.loads(line) for line in worker.stderr if AVAILABLE in line]
    return f"worker logged the outage once ({failed[0].get('failedReceives')} failed receives)"


def _result(transport: str, producing: Producing, done: DoneLog, dead: dict[str, int]) -> Result:
    sent = producing.sent
    done_keys = {key for key in sent if done.count[key]}
    dead_total = sum(dead.values())
    return Result(
        scenario=NAME,
        transport=transport,
        operations=len(sent),
        done=len(done_keys),
        dead_lettered=dead,
        lost=len(sent) - len(done_keys) - dead_total,
        duplicated=sum(n - 1 for key, n in done.count.items() if key in sent and n > 1),
    )


# -- LocalStack -----------------------------------------------------------------------------


class LocalStackOnPort:
    """LocalStack that can be stopped and started again on the same port (same queue URLs)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.server: SqsServer | None = None

    async def start(self) -> SqsServer:
        """Start it and wait until it answers."""
        try:
            self.server = await asyncio.to_thread(start_localstack, self.folder, self.port)
        except ServerUnavailable as error:
            if IN_CI or "PYTEST_CURRENT_TEST" in os.environ:
                unavailable(str(error))
            raise
        return self.server

    async def stop(self) -> None:
        """Stop it (nothing if it is not running)."""
        server, self.server = self.server, None
        if server is not None:
            await asyncio.to_thread(stop, server)

    async def create_queues(self, name: str) -> tuple[str, str]:
        """The queue and DLQ named after ``name``, set up as ``botqueue setup`` does."""
        assert self.server is not None
        async with create_client(self.server.client_config()) as client:
            report = await setup_queues(
                client, queue_name=f"{name}.fifo", dlq_name=f"{name}-dlq.fifo"
            )
        return report.queue_url, report.dlq_url


async def _localstack(size: Size, workdir: Path) -> Result:
    (workdir / "localstack").mkdir()
    localstack = LocalStackOnPort(workdir / "localstack")
    server = await localstack.start()
    try:
        return await _localstack_run(size, workdir, localstack, server)
    finally:
        await localstack.stop()


async def _localstack_run(
    size: Size, workdir: Path, localstack: LocalStackOnPort, server: SqsServer
) -> Result:
    name = f"outage-{uuid.uuid4().hex[:10]}"
    url, dlq_url = await localstack.create_queues(name)
    env = {**server.env(), "BOT_OPERATIONS_QUEUE_URL": url, "BOT_OPERATIONS_DLQ_URL": dlq_url}
    done = DoneLog(workdir / "localstack-done.log")
    transport = SqsTransport(url, dlq_url, client_config=server.client_config())
    producing = Producing(transport, "ls")
    per_phase = PHASE_OPERATIONS[size]
    async with _worker(env, done.path, "tests.services:FileCountingService") as worker:
        watching = asyncio.create_task(done.watch())
        producer = asyncio.create_task(producing.run())
        try:
            await until(lambda: len(producing.sent) >= per_phase, 60, "first operations sent")
            # LocalStack 4.13 community keeps SQS in memory only: what sits in it when it
            # stops is gone with it. So the producer pauses until the worker has done every
            # operation sent so far; then nothing the producer was told is sent can vanish.
            await producing.pause()
            await until(lambda: done.has_all(producing.sent), 60, "everything sent done")
            await localstack.stop()
            producing.phase = "during"
            producing.resume()
            await asyncio.sleep(OUTAGE_SECONDS[size])
            await localstack.start()
            # Same names, so the same URLs: the worker and the producer carry on unchanged.
            assert await localstack.create_queues(name) == (url, dlq_url), "queue URLs changed"
            back = time.monotonic()
            producing.phase = "after"
            await until(lambda: producing.sent_in("after") >= per_phase, 60, "sends after")
            await producing.stop()
            await producing.resend_refused()
            await until(lambda: done.has_all(producing.sent), 90, "everything done after")
            recover = done.first_after(back) - back
            logs = _check_worker_logs(worker, "localstack")
        finally:
            await producing.stop()
            producer.cancel()
            watching.cancel()
        dead = parts.dead_by_kind(await transport.dlq_list())
        await transport.aclose()
        code = await worker.stop()
    assert code == 0, f"the worker exited with {code}"
    producing.check_refusals(PRODUCER_REFUSAL_LIMIT_SECONDS)
    # Structural: while the queue is down the worker tries a receive at least every cap
    # seconds, and botocore adds at most one retry (under 1 s) to a receive with no answer.
    assert RECEIVE_RETRY_CAP_SECONDS + (RECEIVE_NETWORK_ATTEMPTS - 1) * 1.0 <= 5.0
    if size == "full":
        assert recover < RECOVER_LIMIT_SECONDS, f"resumed {recover:.1f} s after the server"
    row = _result("localstack", producing, done, dead)
    row.recover_s = recover
    row.notes = (
        f"LocalStack stopped {OUTAGE_SECONDS[size]:.0f} s and restarted on its port. "
        "Community 4.13 does not persist SQS (PERSISTENCE=1 saves nothing), so the queues "
        "were re-created under the same names and URLs, and before the stop the producer "
        "paused (under 1 s) until the worker had done all it had sent; "
        f"{producing.refusal_summary()} (a ConfigurationError: LocalStack answering before "
        f"its queues were back); {logs}; recovery timed from the queues' return"
    )
    return row


# -- the embedded queue ---------------------------------------------------------------------


async def _embedded(size: Size, workdir: Path, fault: str) -> Result:
    disk = parts.SmallDisk(workdir / f"disk-{fault}")
    disk.mount()
    try:
        return await _embedded_run(size, workdir, disk, fault)
    finally:
        disk.unmount()


async def _start_fault(fault: str, disk: parts.SmallDisk, flag: Path, db: Any) -> None:
    if fault == "read-only":
        flag.write_text("read-only")  # noqa: ASYNC240 - a tiny local file, the switch itself
        return
    # A checkpoint first (as SQLite makes one every 1000 pages), so the write-ahead log
    # starts empty: the next commit needs new blocks, and there are none.
    await db.run(lambda conn: conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall())
    disk.fill(flag)


async def _embedded_run(size: Size, workdir: Path, disk: parts.SmallDisk, fault: str) -> Result:
    url = f"sqlite:///{disk.path / 'queue.db'}"
    flag = workdir / f"{fault}.flag"
    env = {
        "BOT_OPERATIONS_QUEUE_URL": url,
        "BOT_OPERATIONS_DLQ_URL": "",
        "BOTQUEUE_TEST_DELAY": "0.2",
        parts.FLAG_ENV: str(flag),
    }
    done = DoneLog(workdir / f"{fault}-done.log")
    transport = SqliteTransport(url)
    producing = Producing(transport, fault)
    per_phase = PHASE_OPERATIONS[size]
    service = "tests.chaos.queue_outage_parts:SwitchedDiskService"
    with parts.readonly_switch(flag):
        async with _worker(env, done.path, service) as worker:
            watching = asyncio.create_task(done.watch())
            producer = asyncio.create_task(producing.run())
            try:
                await until(lambda: len(producing.sent) >= per_phase, 60, "first operations sent")
                # A backlog the worker needs a while for (0.2 s an operation, 10 at once): its
                # receives then have messages to claim, and a claim is a write. (An empty
                # queue's receive writes nothing, so a full disk would not touch it.)
                await producing.send_backlog(BACKLOG)
                producing.phase = "during"
                await _start_fault(fault, disk, flag, transport.db)
                await asyncio.sleep(DISK_FAULT_SECONDS[size])
                flag.unlink(missing_ok=True)
                disk.empty()
                back = time.monotonic()
                producing.phase = "after"
                await until(lambda: producing.sent_in("after") >= per_phase, 60, "sends after")
                await producing.stop()
                await producing.resend_refused()
                await until(lambda: done.has_all(producing.sent), 90, "everything done after")
                await until(parts.drained(transport), 60, "the queue drained")
                recover = done.first_after(back) - back
                logs = _check_worker_logs(worker, fault)
            finally:
                await producing.stop()
                producer.cancel()
                watching.cancel()
                flag.unlink(missing_ok=True)
            dead = parts.dead_by_kind(await transport.dlq_list())
            await transport.aclose()
            code = await worker.stop()
    assert code == 0, f"the worker exited with {code}"
    producing.check_refusals(PRODUCER_REFUSAL_LIMIT_SECONDS)
    row = _result(f"embedded ({fault.replace('-', ' ')})", producing, done, dead)
    row.recover_s = recover
    row.notes = (
        f"{disk.describe(fault)}; {producing.refusal_summary()}; {logs}; duplicates: operations "
        "whose delete failed in the fault, run again after their visibility timeout"
    )
    return row


async def run(size: Size, workdir: Path) -> list[Result]:
    """Read-only and full disk under the embedded queue, then a LocalStack outage."""
    with parts.quiet_info_logs():
        rows = [await _embedded(size, workdir, fault) for fault in ("read-only", "disk-full")]
        rows.append(await _localstack(size, workdir))
    return rows


SCENARIOS = [
    Scenario(
        NAME,
        run,
        "LocalStack stopped and restarted on its port; the embedded queue's disk read-only, "
        "then full; a worker and a producer carry on throughout",
    )
]
