"""The dead-letter queue on SQS: list without consuming or reordering, redrive in order with
fresh deduplication ids, purge; in process and through ``python -m botqueue dlq``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from botqueue.transports import OutgoingMessage
from botqueue.transports.sqs import SqsTransport
from tests.integration.sqs_faults import fail_entries
from tests.integration.sqs_servers import SqsServer, create_queue_pair, delete_queue_pair

ROOT = Path(__file__).resolve().parents[2]


async def dead_letters(sqs: SqsTransport, bodies: list[tuple[str, str]]) -> None:
    """Send (group, body) pairs and dead-letter each, in order, with its original dedup id."""
    await sqs.send_batch([OutgoingMessage(b, g, f"orig-{b}") for g, b in bodies])
    letters = 0
    while letters < len(bodies):
        for message in await sqs.receive(10, wait_seconds=1):
            await sqs.dead_letter(message, {"error": f"failed {message.body}", "kind": "exhausted"})
            letters += 1


async def drain(sqs: SqsTransport) -> list[str]:
    bodies: list[str] = []
    while batch := await sqs.receive(10, wait_seconds=0):
        bodies += [m.body for m in batch]
        await sqs.delete_batch([m.receipt for m in batch])
    return bodies


def in_group(bodies: list[str], group: str) -> list[str]:
    return [b for b in bodies if b.startswith(group)]


async def test_listing_neither_consumes_nor_reorders(sqs: SqsTransport) -> None:
    sent = [("A", f"A{i}") for i in range(4)] + [("B", f"B{i}") for i in range(3)]
    await dead_letters(sqs, sent)
    first = await sqs.dlq_list()
    second = await sqs.dlq_list()
    assert [d.message_id for d in first] == [d.message_id for d in second]
    bodies = [d.body for d in first]
    assert in_group(bodies, "A") == ["A0", "A1", "A2", "A3"]
    assert in_group(bodies, "B") == ["B0", "B1", "B2"]
    assert first[0].failure == {"error": "failed A0", "kind": "exhausted"}
    assert [d.body for d in await sqs.dlq_list(limit=3)] == bodies[:3]
    # Everything is visible again at once: nothing is held after a listing.
    dlq = await sqs.attributes(await sqs.dlq_url())
    assert dlq["ApproximateNumberOfMessages"] == "7"
    assert dlq["ApproximateNumberOfMessagesNotVisible"] == "0"


async def test_redrive_moves_a_long_group_back_in_order(sqs: SqsTransport) -> None:
    # More than one receive's worth in one group: it moves ten at a time, in order.
    sent = [("L", f"L{i:02d}") for i in range(13)] + [("M", "M0")]
    await dead_letters(sqs, sent)
    assert await sqs.dlq_redrive() == 14
    bodies = await drain(sqs)
    assert in_group(bodies, "L") == [f"L{i:02d}" for i in range(13)]
    assert in_group(bodies, "M") == ["M0"]
    assert (await sqs.stats()).dead_letters == 0


async def test_redrive_of_chosen_ids_leaves_the_rest_visible(sqs: SqsTransport) -> None:
    await dead_letters(sqs, [("C", "C0"), ("D", "D0"), ("E", "E0")])
    listed = {d.body: d.message_id for d in await sqs.dlq_list()}
    assert await sqs.dlq_redrive([listed["D0"], "no-such-id"]) == 1
    assert await drain(sqs) == ["D0"]
    assert sorted(d.body for d in await sqs.dlq_list()) == ["C0", "E0"]


async def test_a_failed_redrive_send_keeps_the_message_and_its_group(sqs: SqsTransport) -> None:
    await dead_letters(sqs, [("F", "F0"), ("F", "F1"), ("G", "G0")])
    calls: list[list[str]] = []
    fail_entries(
        await sqs.client(), "send_message_batch", {0: ("InvalidMessageContents", True)}, calls
    )
    moved = await sqs.dlq_redrive()
    # F0 failed; F1 went in the same batch (SQS sends the rest of a batch), G0 too.
    assert moved == 2
    assert sorted(await drain(sqs)) == ["F1", "G0"]
    assert [d.body for d in await sqs.dlq_list()] == ["F0"]


async def test_purge_deletes_and_counts(sqs: SqsTransport) -> None:
    await dead_letters(sqs, [("P", f"P{i}") for i in range(12)])
    assert await sqs.dlq_purge() == 12
    assert await sqs.dlq_list() == []
    assert await sqs.dlq_purge() == 0


def botqueue(server: SqsServer, queue_url: str, dlq_url: str, *args: str) -> str:
    env = {
        **os.environ,
        **server.env(),
        "BOT_OPERATIONS_QUEUE_URL": queue_url,
        "BOT_OPERATIONS_DLQ_URL": dlq_url,
        "BOTQUEUE_LOG_LEVEL": "warning",
    }
    done = subprocess.run(
        [sys.executable, "-m", "botqueue", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_dlq_commands_on_sqs(localstack_server: SqsServer) -> None:
    pair = await create_queue_pair(localstack_server, "cli")
    transport = SqsTransport(
        pair.url, pair.dlq_url, client_config=localstack_server.client_config()
    )
    try:
        await dead_letters(transport, [("Q", "Q0"), ("Q", "Q1"), ("R", "R0")])
        run = lambda *args: botqueue(localstack_server, pair.url, pair.dlq_url, *args)  # noqa: E731
        listed = [json.loads(line) for line in run("dlq", "list", "--json").splitlines()]
        assert [entry["body"] for entry in listed if entry["groupId"] == "Q"] == ["Q0", "Q1"]
        assert listed[0]["failure"]["kind"] == "exhausted"
        assert json.loads(run("stats", "--json"))["dead_letters"] == 3
        r0 = next(entry["messageId"] for entry in listed if entry["body"] == "R0")
        assert run("dlq", "redrive", r0).strip() == "redrove 1 message(s)"
        assert await drain(transport) == ["R0"]
        assert run("dlq", "purge", "--yes").strip() == "purged 2 message(s)"
        assert json.loads(run("stats", "--json"))["dead_letters"] == 0
    finally:
        await transport.aclose()
        await delete_queue_pair(localstack_server, pair)


async def test_dead_lettering_the_same_delivery_twice_writes_it_once(sqs: SqsTransport) -> None:
    await sqs.send_batch([OutgoingMessage("twice", "T", uuid.uuid4().hex)])
    (message,) = await sqs.receive(1, wait_seconds=1)
    await sqs.dead_letter(message, {"error": "first", "kind": "permanent"})
    await sqs.dead_letter(message, {"error": "second", "kind": "permanent"})
    assert [d.body for d in await sqs.dlq_list()] == ["twice"]
