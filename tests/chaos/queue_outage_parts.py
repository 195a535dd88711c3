"""Parts of the queue-outage scenario: the producer that keeps going, the log of done
operations, the small disk and the read-only switch (importable by a worker subprocess)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

from botqueue import BotQueueProducer
from botqueue.errors import BotQueueError
from botqueue.operations import InviteUser
from botqueue.transports import sqlite_db
from botqueue.transports.base import DeadLetter, Transport
from tests.services import FileCountingService

T = TypeVar("T")
FLAG_ENV = "BOTQUEUE_CHAOS_DISK_FLAG"
DISK_SIZE = "16m"


async def until(check: Callable[[], bool | Awaitable[bool]], within: float, what: str) -> None:
    """Wait for ``check()`` (plain or async) to hold; AssertionError naming ``what`` if not."""
    deadline = time.monotonic() + within
    while True:
        answer = check()
        if not isinstance(answer, bool):
            answer = await answer
        if answer:
            return
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        await asyncio.sleep(0.05)


def drained(transport: Transport) -> Callable[[], Awaitable[bool]]:
    """A check: nothing visible and nothing in flight on the main queue."""

    async def check() -> bool:
        stats = await transport.stats()
        return stats.visible == 0 and stats.in_flight == 0

    return check


@contextlib.contextmanager
def quiet_info_logs() -> Iterator[None]:
    """In this process, structlog from warning up only: the producer's hundreds of "enqueued"
    lines would bury the table ``tests.chaos.run`` prints."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        yield
    finally:
        structlog.configure(**saved)


def dead_by_kind(letters: Sequence[DeadLetter]) -> dict[str, int]:
    """Dead letters counted by their failure record's kind."""
    kinds = Counter(str((letter.failure or {}).get("kind", "unknown")) for letter in letters)
    return dict(kinds)


@dataclass(frozen=True)
class Refusal:
    """A producer call that raised: in which phase, after how long, with what."""

    key: str
    phase: str
    seconds: float
    error: str
    typed: bool


class Producing:
    """Enqueues one invite every ``pace`` seconds until stopped; remembers what it was told
    was sent (by subscription id) and every refusal, for the application's retry after."""

    def __init__(self, transport: Transport, prefix: str, pace: float = 0.1) -> None:
        self.producer = BotQueueProducer(transport)
        self.prefix = prefix
        self.pace = pace
        self.phase = "before"
        self.sent: dict[str, str] = {}
        self.sent_phase: dict[str, str] = {}
        self.refused: list[Refusal] = []
        self._ops: dict[str, InviteUser] = {}
        self._to_resend: list[str] = []
        self._gate = asyncio.Event()
        self._gate.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopped = False

    async def _one(self, key: str) -> bool:
        started = time.monotonic()
        try:
            message_id = await self.producer.enqueue(self._ops[key])
        except Exception as error:
            typed = isinstance(error, BotQueueError)
            took = time.monotonic() - started
            self.refused.append(Refusal(key, self.phase, took, type(error).__name__, typed))
            return False
        self.sent[key] = message_id
        self.sent_phase[key] = self.phase
        return True

    async def run(self) -> None:
        """Produce until ``stop()``; ``pause()`` holds it between two calls."""
        number = 0
        while not self._stopped:
            await self._gate.wait()
            if self._stopped:
                break
            self._idle.clear()
            try:
                number += 1
                key = f"{self.prefix}-{number}"
                self._ops[key] = InviteUser(
                    user_id=100_000 + number,
                    channel_id="@queue_outage",
                    subscription_id=key,
                    order_id=f"order-{key}",
                )
                if not await self._one(key):
                    self._to_resend.append(key)
            finally:
                self._idle.set()
            await asyncio.sleep(self.pace)

    async def pause(self) -> None:
        """Hold the producer; return once no call is under way."""
        self._gate.clear()
        await self._idle.wait()

    def resume(self) -> None:
        """Let a paused producer go on."""
        self._gate.set()

    async def stop(self) -> None:
        """Stop producing; return once no call is under way."""
        self._stopped = True
        self._gate.set()
        await self._idle.wait()

    async def resend_refused(self, within: float = 60.0) -> None:
        """What an application does after an outage: send each refused operation again."""
        self.phase = "resent"
        deadline = time.monotonic() + within
        for key in self._to_resend:
            while not await self._one(key):
                assert time.monotonic() < deadline, f"could not re-send {key}"
                await asyncio.sleep(0.5)
        self._to_resend.clear()

    async def send_backlog(self, count: int) -> None:
        """Send ``count`` operations in one go (batches of 10), between two paced calls."""
        await self.pause()
        keys = [f"{self.prefix}-backlog-{n}" for n in range(count)]
        for n, key in enumerate(keys):
            self._ops[key] = InviteUser(
                user_id=200_000 + n,
                channel_id="@queue_outage",
                subscription_id=key,
                order_id=f"order-{key}",
            )
        ids = await self.producer.enqueue_many([self._ops[key] for key in keys])
        for key, message_id in zip(keys, ids, strict=True):
            self.sent[key] = message_id
            self.sent_phase[key] = self.phase
        self.resume()

    def sent_in(self, phase: str) -> int:
        """How many operations were sent in a phase."""
        return sum(1 for sent_phase in self.sent_phase.values() if sent_phase == phase)

    def check_refusals(self, limit: float) -> None:
        """Calls during the fault were refused, each with a botqueue error, within ``limit``."""
        untyped = [r for r in self.refused if not r.typed]
        assert not untyped, f"producer calls raised untyped errors: {untyped[:3]}"
        assert any(r.phase == "during" for r in self.refused), "no producer call was refused"
        slowest = max(r.seconds for r in self.refused)
        assert slowest <= limit, f"a refused producer call took {slowest:.1f} s (limit {limit})"

    def refusal_summary(self) -> str:
        """One phrase for the notes."""
        kinds = ", ".join(
            f"{n} {name}" for name, n in Counter(r.error for r in self.refused).items()
        )
        slowest = max((r.seconds for r in self.refused), default=0.0)
        return (
            f"{len(self.refused)} producer calls refused ({kinds}), each within {slowest:.1f} s, "
            "all re-sent after"
        )


class DoneLog:
    """The lines FileCountingService appends (one subscription id per operation run), read as
    they come, with the time each was first seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count: Counter[str] = Counter()
        self.times: list[float] = []
        self._offset = 0
        self._rest = ""

    def poll(self) -> None:
        """Read what was appended since the last poll."""
        with contextlib.suppress(FileNotFoundError), open(self.path) as log:
            log.seek(self._offset)
            data = self._rest + log.read()
            self._offset = log.tell()
            *lines, self._rest = data.split("\n")
            now = time.monotonic()
            for key in filter(None, lines):
                self.count[key] += 1
                self.times.append(now)

    async def watch(self) -> None:
        """Poll every 50 ms (the resolution of the recovery time)."""
        while True:
            self.poll()
            await asyncio.sleep(0.05)

    def has_all(self, keys: Sequence[str] | dict[str, str]) -> bool:
        """Whether every key was done at least once."""
        self.poll()
        return all(self.count[key] for key in keys)

    def first_after(self, moment: float) -> float:
        """When the first operation after ``moment`` was seen done."""
        self.poll()
        return min(seen for seen in self.times if seen >= moment)


# -- the disk -------------------------------------------------------------------------------


class SmallDisk:
    """A 16 MiB tmpfs for the queue file when this machine lets us mount one (root), which
    ``fill()`` fills with a ballast file and ``empty()`` frees; elsewhere a plain folder,
    and a full disk is injected through the switch (SQLite's max_page_count)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.mounted = False
        self.flag: Path | None = None

    def mount(self) -> None:
        """Mount the tmpfs if allowed; a plain folder otherwise."""
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            options = f"size={DISK_SIZE},mode=0700"
            done = subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)],
                capture_output=True,
                check=False,
            )
            self.mounted = done.returncode == 0

    def fill(self, flag: Path) -> None:
        """Leave no free byte (or, not mounted, make SQLite's file unable to grow)."""
        if not self.mounted:
            flag.write_text("full")
            self.flag = flag
            return
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError), open(self.path / "ballast", "wb") as ballast:
            while True:
                ballast.write(chunk)
                ballast.flush()

    def empty(self) -> None:
        """Free the space again."""
        if self.flag is not None:
            self.flag.unlink(missing_ok=True)
        (self.path / "ballast").unlink(missing_ok=True)

    def unmount(self) -> None:
        """Unmount (lazily if something still holds it)."""
        if self.mounted:
            done = subprocess.run(["umount", str(self.path)], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
            self.mounted = False

    def describe(self, fault: str) -> str:
        """How the fault was made, for the notes."""
        if fault == "disk-full":
            if self.mounted:
                return (
                    f"queue file on a {DISK_SIZE} tmpfs filled to the last byte by a ballast file"
                )
            return (
                "no mount allowed: SQLite's max_page_count pinned (SQLITE_FULL) in both processes"
            )
        return (
            "Linux refuses to remount a file system read-only while the worker holds the file "
            "open for writing (EBUSY), and chmod binds neither open files nor root: so "
            "PRAGMA query_only in the worker and the producer, while a flag file exists, makes "
            "SQLite fail every write with SQLITE_READONLY"
        )


def _mode(flag: Path) -> str:
    try:
        return "full" if flag.read_text().strip() == "full" else "read-only"
    except FileNotFoundError:
        return ""


def _switched(
    original: Callable[[sqlite3.Connection, Callable[[sqlite3.Connection], Any]], Any],
    flag: Path,
) -> Callable[[sqlite3.Connection, Callable[[sqlite3.Connection], Any]], Any]:
    last = {"mode": ""}

    def transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], Any]) -> Any:
        mode = _mode(flag)
        if mode != last["mode"]:
            conn.execute(f"PRAGMA query_only = {int(mode == 'read-only')}")
            # A maximum below the file's size pins it at its size: growing fails SQLITE_FULL.
            conn.execute(f"PRAGMA max_page_count = {1 if mode == 'full' else 4294967294}")
            last["mode"] = mode
        return original(conn, work)

    return transaction


@contextlib.contextmanager
def readonly_switch(flag: Path) -> Iterator[None]:
    """In this process, while ``flag`` exists, SQLite queue writes fail as on a read-only
    (or, with "full" in it, a full) disk."""
    original = sqlite_db._transaction
    # Replaced on the module: SqliteDatabase looks it up there for every transaction.
    setattr(sqlite_db, "_transaction", _switched(original, flag))  # noqa: B010
    try:
        yield
    finally:
        setattr(sqlite_db, "_transaction", original)  # noqa: B010


class SwitchedDiskService(FileCountingService):
    """FileCountingService, in a worker whose SQLite writes obey $BOTQUEUE_CHAOS_DISK_FLAG."""

    def __init__(self) -> None:
        super().__init__()
        flag = os.environ.get(FLAG_ENV)
        if flag:
            switched = _switched(sqlite_db._transaction, Path(flag))
            setattr(sqlite_db, "_transaction", switched)  # noqa: B010
