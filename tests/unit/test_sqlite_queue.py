"""Embedded-queue behaviours that need a controlled clock, several connections or processes."""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest

from botqueue.errors import ConfigurationError
from botqueue.transports import OutgoingMessage, SqliteTransport, open_transport
from botqueue.transports.sqlite import parse_sqlite_url
from tests.conftest import FakeClock


def msg(body: str, group: str = "g", dedup: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(body=body, group_id=group, deduplication_id=dedup or uuid.uuid4().hex)


async def test_dedup_window_expires_after_five_minutes(
    clocked_transport: SqliteTransport, clock: FakeClock
) -> None:
    first = await clocked_transport.send_batch([msg("a", dedup="k")])
    clock.advance(299)
    inside = await clocked_transport.send_batch([msg("a", dedup="k")])
    assert inside[0].message_id == first[0].message_id
    clock.advance(2)
    after = await clocked_transport.send_batch([msg("a", dedup="k")])
    assert after[0].message_id != first[0].message_id
    assert (await clocked_transport.stats()).visible == 2


async def test_retention_drops_old_messages(db_url: str, clock: FakeClock) -> None:
    async with SqliteTransport(db_url, clock=clock) as transport:
        await transport.send_batch([msg("old")])
        (message,) = await transport.receive(1, wait_seconds=0)
        await transport.dead_letter(message, {"kind": "permanent", "error": "x"})
        await transport.send_batch([msg("old2")])
        clock.advance(4 * 24 * 3600 + 1)
        assert await transport.receive(1, wait_seconds=0) == []
        assert (await transport.stats()).dead_letters == 1  # the DLQ keeps 14 days
        clock.advance(10 * 24 * 3600)
        await transport.dlq_db.write(lambda conn: transport.dlq.housekeep(conn, clock()))
        assert (await transport.stats()).dead_letters == 0


async def test_max_receive_count_moves_to_the_dlq(db_url: str) -> None:
    async with SqliteTransport(db_url, max_receive_count=2) as transport:
        await transport.send_batch([msg("poison")])
        for _ in range(2):
            (message,) = await transport.receive(1, wait_seconds=0)
            await transport.change_visibility_batch([(message.receipt, 0)])
        assert await transport.receive(1, wait_seconds=0) == []
        (letter,) = await transport.dlq_list()
        assert letter.body == "poison"
        assert letter.failure is not None and letter.failure["kind"] == "max_receive_count"
        assert letter.failure["attempts"] == 2


async def test_idle_long_poll_does_not_spin(sqlite_transport: SqliteTransport) -> None:
    claims = 0
    original = sqlite_transport.queue.claim

    def counting(*args: object, **kwargs: object) -> object:
        nonlocal claims
        claims += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    sqlite_transport.queue.claim = counting  # type: ignore[method-assign]
    assert await sqlite_transport.receive(10, wait_seconds=1.0) == []
    # One claim at the start and one as the poll ends; in between it waits, not re-querying
    # (a spinning poll would claim hundreds of times in a second).
    assert claims <= 2


async def test_a_send_on_another_connection_wakes_the_long_poll(db_url: str) -> None:
    async with SqliteTransport(db_url) as consumer_side, SqliteTransport(db_url) as producer_side:
        poll = asyncio.create_task(consumer_side.receive(10, wait_seconds=10))
        await asyncio.sleep(0.2)
        await producer_side.send_batch([msg("hello")])
        received = await asyncio.wait_for(poll, 9)
        assert [m.body for m in received] == ["hello"]


async def test_a_send_from_another_process_wakes_the_long_poll(db_url: str) -> None:
    script = (
        "import asyncio, time\n"
        "from botqueue.transports import SqliteTransport, OutgoingMessage\n"
        "async def main():\n"
        "    time.sleep(0.5)\n"
        f"    async with SqliteTransport({db_url!r}) as t:\n"
        "        await t.send_batch([OutgoingMessage('from-child', 'g', 'd')])\n"
        "asyncio.run(main())\n"
    )
    async with SqliteTransport(db_url) as transport:
        child = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
        try:
            received = await transport.receive(10, wait_seconds=15)
        finally:
            assert await asyncio.wait_for(child.wait(), 30) == 0
        assert [m.body for m in received] == ["from-child"]


async def test_dlq_in_another_file(tmp_path: Path) -> None:
    main_url = f"sqlite:///{tmp_path / 'main.db'}"
    dlq_url = f"sqlite:///{tmp_path / 'dlq.db'}?queue=bot-operations-dlq"
    async with SqliteTransport(main_url, dlq_url) as transport:
        await transport.send_batch([msg("m")])
        (message,) = await transport.receive(1, wait_seconds=0)
        await transport.dead_letter(message, {"kind": "permanent", "error": "e"})
    # The dead letter lives in dlq.db: opened as a main queue, it is there.
    async with SqliteTransport(dlq_url) as dlq_as_main:
        assert (await dlq_as_main.stats()).visible == 1
    async with SqliteTransport(main_url, dlq_url) as transport:
        assert [d.body for d in await transport.dlq_list()] == ["m"]
        assert (await transport.stats()).visible == 0


@pytest.mark.parametrize(
    ("url", "path", "queue", "sync"),
    [
        ("sqlite:///botqueue.db", Path("botqueue.db"), "bot-operations", "auto"),
        ("sqlite:////var/lib/q.db", Path("/var/lib/q.db"), "bot-operations", "auto"),
        ("sqlite:///q.db?queue=jobs&synchronous=NORMAL", Path("q.db"), "jobs", "normal"),
    ],
)
def test_sqlite_urls(url: str, path: Path, queue: str, sync: str) -> None:
    assert parse_sqlite_url(url, "bot-operations") == (path, queue, sync)


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///q.db?bogus=1", "sqlite:///q.db?synchronous=sometimes", "redis://x"],
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        open_transport(url)


@pytest.mark.parametrize(
    ("mode", "after_send", "after_receive"), [("auto", 2, 1), ("full", 2, 2), ("normal", 1, 1)]
)
async def test_sends_reach_the_disk_before_they_return(
    tmp_path: Path, mode: str, after_send: int, after_receive: int
) -> None:
    # SQLite's synchronous levels: 1 NORMAL, 2 FULL (fsync at every commit).
    async with SqliteTransport(f"sqlite:///{tmp_path / 'q.db'}?synchronous={mode}") as transport:

        async def level() -> int:
            return int(
                await transport.db.run(
                    lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0]
                )
            )

        await transport.send_batch([msg("durable")])
        assert await level() == after_send
        await transport.receive(1, wait_seconds=0)
        assert await level() == after_receive
