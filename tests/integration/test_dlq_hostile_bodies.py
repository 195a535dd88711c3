"""Issue 12's two defects found on main: one dead letter with a deeply nested body must not
hide the others from ``botqueue dlq list``, and the embedded queue's files are private."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from botqueue.transports import OutgoingMessage, SqliteTransport, Transport
from tests.integration.sqs_servers import SqsServer, sqs_transport

ROOT = Path(__file__).resolve().parents[2]
NESTED = "[" * 5000
VALID = json.dumps({"operationType": "VERIFY_PERMISSIONS", "channelId": "-1001"})


async def dead_letter_both(transport: Transport) -> None:
    """Put a nested body and a valid one on the queue, then dead-letter both."""
    await transport.send_batch(
        [
            OutgoingMessage(body=NESTED, group_id="g1", deduplication_id="nested"),
            OutgoingMessage(body=VALID, group_id="g2", deduplication_id="valid"),
        ]
    )
    received = await transport.receive(10, wait_seconds=1)
    assert len(received) == 2
    for message in received:
        await transport.dead_letter(message, {"error": "test", "kind": "undecodable"})


def dlq_list(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botqueue", "dlq", "list", "--json"],
        cwd=ROOT,
        env={**os.environ, "BOTQUEUE_LOG_LEVEL": "warning", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_both_listed(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    letters = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    bodies = sorted((letter["body"] for letter in letters), key=str)
    assert len(bodies) == 2
    assert NESTED in bodies  # shown as the text it is
    assert {"operationType": "VERIFY_PERMISSIONS", "channelId": "-1001"} in bodies


async def test_a_nested_dead_letter_hides_nothing_on_the_embedded_queue(db_url: str) -> None:
    async with SqliteTransport(db_url) as transport:
        await dead_letter_both(transport)
    assert_both_listed(dlq_list({"BOT_OPERATIONS_QUEUE_URL": db_url}))


async def test_a_nested_dead_letter_hides_nothing_on_sqs(moto_server: SqsServer) -> None:
    async with sqs_transport(moto_server, "nested") as transport:
        await dead_letter_both(transport)
        env = {
            **moto_server.env(),
            "BOT_OPERATIONS_QUEUE_URL": transport.url,
            "BOT_OPERATIONS_DLQ_URL": await transport.dlq_url(),
        }
        assert_both_listed(dlq_list(env))


def file_modes(folder: Path, prefix: str) -> dict[str, int]:
    """Permission bits of the files in ``folder`` whose names start with ``prefix``."""
    return {
        p.name: stat.S_IMODE(p.stat().st_mode)
        for p in folder.iterdir()
        if p.name.startswith(prefix)
    }


@pytest.mark.parametrize("umask", [0o022, 0o002])
async def test_the_embedded_queue_files_are_private(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        path = tmp_path / "queue.db"
        async with SqliteTransport(f"sqlite:///{path}") as transport:
            await transport.send_batch(
                [OutgoingMessage(body=VALID, group_id="g", deduplication_id="d")]
            )
            modes = file_modes(tmp_path, "queue.db")
            assert any(name.endswith("-wal") for name in modes), modes
            assert set(modes.values()) == {0o600}, modes
    finally:
        os.umask(old)
