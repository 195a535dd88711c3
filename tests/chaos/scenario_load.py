"""Load (issue 12, point 6): a deep backlog worked through by one ``botqueue worker --drain``
process, with a no-op service and with the Telegram service against the sandbox, on the
embedded queue and on LocalStack.

The backlog is enqueued first (``send_batch`` in tens, the operations of bench_worker.py: 1,000
(channel, user) groups over 50 channels, 1% permission checks), then one worker drains it.
Watched from outside: the worker's RSS (/proc VmRSS at the first sample after its first
operation and at its last sample, VmHWM for the peak) and its operations per second between
the first and the last operation. The no-op service (tests/chaos/noop_service.py) writes a
progress line every few calls, which gives the cost per operation over windows of the run.

Asserted beyond Result.check(): every operation done, none dead-lettered; RSS grows by less than
RSS_GROWTH_BOUND from start to end, and on the embedded queue by no more at the big backlog
than at the small one plus LEAK_BOUND; the median CPU time per operation at the big backlog is
under COST_RATIO_BOUND times the small backlog's, across the two runs and within the big run
(first tenth, ~100,000 waiting, against the last tenth, under 10,000 waiting).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botqueue.producer import to_message
from botqueue.sandbox import DEFAULT_WORLD, SandboxServer
from botqueue.transports import SqliteTransport
from botqueue.transports.base import Transport
from botqueue.transports.sqs import SqsTransport
from tests.chaos import _workers, noop_service
from tests.chaos.scenario import Result, Scenario, Size
from tests.integration.sqs_servers import (
    ServerUnavailable,
    create_queue_pair,
    start_localstack,
    stop,
    unavailable,
)

if str(noop_service.BENCH) not in sys.path:  # the bench scripts import each other top-level
    sys.path.append(str(noop_service.BENCH))
from bench_worker import CHANNELS, make_operations

GROUPS = 1_000
MIB = 1024  # KiB
RSS_GROWTH_BOUND = 64 * MIB
"""A drained worker holds at most ~20 messages; 64 MiB is far above allocator and SQLite cache
noise (a few MiB) and far below what keeping anything per operation of 100,000 would cost."""
LEAK_BOUND = 16 * MIB
"""Growth at the big backlog minus growth at the small one: at full size (90,000 operations
apart) it flags ~190 bytes or more kept per operation; at reduced size (3,000) only ~5.6 KB."""
COST_RATIO_BOUND = 2.0
SAMPLE_SECONDS = 0.05
NOOP = "tests.chaos.noop_service:NoopService"
UNLIMITED = "100000"  # flood limits off: the run measures the worker, not the limiter


@dataclass(frozen=True)
class Sizes:
    """The backlogs of one size: embedded no-op (big and small), embedded sandbox, LocalStack."""

    big: int
    small: int
    sandbox: int
    localstack: int
    every: int  # a no-op progress line every this many calls (the small run gets ~20 windows)


# The Telegram service costs the worker ~5 ms of CPU per operation (python-telegram-bot and
# httpx, ~2.5 ms per Bot API call), ~200 operations/s on this 2-core machine: 100,000 through
# the sandbox would take ~8 minutes, so the full size puts 20,000 through it.
SIZES: dict[str, Sizes] = {
    "reduced": Sizes(big=4_000, small=1_000, sandbox=2_000, localstack=500, every=50),
    "full": Sizes(big=100_000, small=10_000, sandbox=20_000, localstack=10_000, every=500),
}


@dataclass
class Watch:
    """One worker run seen from outside: RSS in KiB, and when operations were happening."""

    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    first_at: float | None = None
    last_at: float = 0.0
    progress: int = 0
    wall_ms: list[float] = field(default_factory=list)  # per operation, by progress window
    cpu_ms: list[float] = field(default_factory=list)
    calls: int = 0

    @property
    def growth(self) -> int:
        """VmRSS at the end minus at the start, KiB."""
        return self.rss_end - self.rss_start

    def rate(self, operations: int) -> float:
        """Operations per second between the first and the last operation seen."""
        assert self.first_at is not None
        return operations / max(self.last_at - self.first_at, SAMPLE_SECONDS)

    def describe(self, operations: int) -> str:
        """``1,234 ops/s; RSS 45→46 MiB (peak 47)``."""
        return (
            f"{self.rate(operations):,.0f} ops/s; RSS {self.rss_start / MIB:.0f}→"
            f"{self.rss_end / MIB:.0f} MiB (peak {self.rss_peak / MIB:.0f})"
        )


def _memory(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in KiB, or None once the process is gone (a zombie has neither)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if "VmRSS" not in fields or "VmHWM" not in fields:
        return None
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def watch_worker(env: dict[str, str], progress: Callable[[], int], name: str) -> Watch:
    """Run one ``worker --drain`` to its end, sampling its memory and ``progress()``."""
    worker = await _workers.start(env, "--drain", name=name, inherit=False)
    watch = Watch()
    exited = asyncio.ensure_future(worker.process.wait())
    deadline = time.monotonic() + 900
    try:
        while not exited.done():
            now, memory, moved = time.monotonic(), _memory(worker.process.pid), progress()
            if memory is not None:
                watch.rss_end, watch.rss_peak = memory
                if watch.first_at is None and moved > 0:
                    watch.first_at, watch.rss_start = now, memory[0]
            if moved != watch.progress:
                watch.progress, watch.last_at = moved, now
            assert now < deadline, f"{name} still running after 900 s"
            await asyncio.wait({exited}, timeout=SAMPLE_SECONDS)
    finally:
        if not exited.done():
            await _workers.kill(worker)
    code = await _workers.stop(worker)
    assert code == 0, f"{name} exited with {code}:\n{_workers.output(worker)}"
    assert watch.first_at is not None, f"{name} did no operation:\n{_workers.output(worker)}"
    return watch


def _base_env() -> dict[str, str]:
    # Nothing of the caller's botqueue, Telegram or AWS settings leaks into the worker.
    prefixes = ("BOT_OPERATIONS_", "BOTQUEUE_", "TELEGRAM_", "SQS_", "AWS_", "CHAOS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    # Warnings only: 100,000 JSON lines would measure the log pipe, not the worker.
    return {**env, "PYTHONUNBUFFERED": "1", "BOTQUEUE_LOG_LEVEL": "warning"}


def sandbox_world() -> dict[str, Any]:
    """The 50 channels and 1,000 users make_operations names; every other user of a channel
    is a member at the start, so removals take them out and invites send links."""
    users = [{"id": 100_000 + g, "first_name": f"User {g}"} for g in range(GROUPS)]
    channels = [
        {
            "id": -1001000000000 - c,
            "title": f"Load {c}",
            "bot_rights": {"can_invite_users": True, "can_restrict_members": True},
            "members": [100_000 + g for g in range(c, GROUPS, CHANNELS) if (g // CHANNELS) % 2],
        }
        for c in range(CHANNELS)
    ]
    return {"bots": DEFAULT_WORLD["bots"][:1], "channels": channels, "users": users}


async def fill(transport: Transport, count: int) -> None:
    """Enqueue ``count`` operations in batches of ten (no per-operation log lines)."""
    ops = make_operations(count, GROUPS)
    for start in range(0, count, 10):
        results = await transport.send_batch([to_message(op) for op in ops[start : start + 10]])
        assert all(r.message_id for r in results), results
    stats = await transport.stats()
    assert stats.visible == count, f"filled {count}, the queue shows {stats}"


async def count(transport: Transport, operations: int, label: str) -> tuple[int, dict[str, int]]:
    """(done, dead letters by kind) after a drain; asserts all were done."""
    stats = await transport.stats()
    kinds: Counter[str] = Counter()
    if stats.dead_letters:
        for letter in await transport.dlq_list():
            kinds[str((letter.failure or {}).get("kind", "unknown"))] += 1
    done = operations - stats.visible - stats.in_flight - stats.dead_letters
    assert done == operations and not kinds, f"load/{label}: {stats}, dead letters {dict(kinds)}"
    return done, dict(kinds)


def _costs(watch: Watch, progress_file: Path) -> None:
    """Per-operation wall and CPU milliseconds over each window between progress lines."""
    rows: list[tuple[float, float, float]] = []
    for line in progress_file.read_text().splitlines():
        parts = line.split()
        if parts[0] == "end":
            watch.calls = int(parts[1])
        else:
            rows.append((float(parts[0]), float(parts[1]), float(parts[2])))
    # rows[0] is the first call: the window from it to the first full line is short.
    for (n0, w0, c0), (n1, w1, c1) in itertools.pairwise(rows[1:]):
        watch.wall_ms.append((w1 - w0) * 1000 / (n1 - n0))
        watch.cpu_ms.append((c1 - c0) * 1000 / (n1 - n0))


async def run_noop(
    env: dict[str, str], transport: Transport, n: int, every: int, work: Path
) -> Watch:
    """Fill, drain with the no-op service, check and return what was seen."""
    await fill(transport, n)
    progress_file = work / f"progress-{n}-{time.monotonic_ns()}.txt"
    service = {"BOTQUEUE_SERVICE": NOOP, "CHAOS_PROGRESS_FILE": str(progress_file)}
    service["CHAOS_PROGRESS_EVERY"] = str(every)
    size = lambda: progress_file.stat().st_size if progress_file.exists() else 0  # noqa: E731
    watch = await watch_worker({**env, **service}, size, f"no-op worker ({n})")
    _costs(watch, progress_file)
    return watch


async def run_sandbox(env: dict[str, str], transport: Transport, n: int) -> tuple[Watch, int, int]:
    """Fill, drain with the Telegram service against a fresh sandbox; (watch, duplicated
    invite links, extra valid links), both counted per invite operation (link name)."""
    await fill(transport, n)
    async with SandboxServer(sandbox_world()) as sandbox:
        state = sandbox.state
        telegram = {
            "TELEGRAM_BOT_TOKEN": sandbox.token,
            "TELEGRAM_API_BASE_URL": sandbox.url,
            "TELEGRAM_RATE_LIMIT": UNLIMITED,
            "TELEGRAM_CHANNEL_RATE": UNLIMITED,
            "TELEGRAM_USER_CHAT_RATE": UNLIMITED,
        }
        calls = lambda: state.total_requests - state.requests["getMe"]  # noqa: E731
        watch = await watch_worker({**env, **telegram}, calls, f"sandbox worker ({n})")
        now = state.now()
        links = Counter((link.chat_id, link.name) for link in state.links.values())
        valid = Counter(
            (link.chat_id, link.name)
            for link in state.links.values()
            if not link.is_revoked and (not link.expire_date or link.expire_date > now)
        )
    return watch, sum(c - 1 for c in links.values()), sum(c - 1 for c in valid.values())


def _median_ratio(big: list[float], small: list[float]) -> float:
    return statistics.median(big) / statistics.median(small)


def check_noop(label: str, big: Watch, small: Watch, sizes: Sizes) -> str:
    """Assert the two embedded no-op runs' leak and cost bounds; return the notes' figures."""
    assert big.growth - small.growth < LEAK_BOUND, (
        f"load/{label}: RSS grew {big.growth / MIB:.1f} MiB at {sizes.big:,} against "
        f"{small.growth / MIB:.1f} MiB at {sizes.small:,}: something is kept per operation"
    )
    across = _median_ratio(big.cpu_ms, small.cpu_ms)
    tenth = max(1, len(big.cpu_ms) // 10)
    within = _median_ratio(big.cpu_ms[:tenth], big.cpu_ms[-tenth:])
    for what, ratio in (("across runs", across), ("early/late in the big run", within)):
        assert ratio < COST_RATIO_BOUND, (
            f"load/{label}: CPU per operation x{ratio:.2f} at {sizes.big:,} against "
            f"{sizes.small:,} waiting ({what}): the cost grows with the backlog"
        )
    wall = _median_ratio(big.wall_ms, small.wall_ms)
    return (
        f"{big.describe(sizes.big)}, at {sizes.small:,}: {small.rss_start / MIB:.0f}→"
        f"{small.rss_end / MIB:.0f}; CPU/op x{across:.2f} at {sizes.big:,} vs {sizes.small:,} "
        f"(wall x{wall:.2f}), x{within:.2f} first vs last tenth"
    )


async def drain(
    label: str, env: dict[str, str], transport: Transport, n: int, sizes: Sizes, work: Path
) -> tuple[Result, Watch]:
    """One row: fill ``n``, drain with the no-op service or (label "..., sandbox") the sandbox,
    count, and assert the RSS bound."""
    if label.endswith("sandbox"):
        watch, duplicated, extra = await run_sandbox(env, transport, n)
    else:
        watch = await run_noop(env, transport, n, sizes.every, work)
        assert watch.calls >= n, f"load/{label}: the service saw {watch.calls} of {n} operations"
    done, dead = await count(transport, n, label)
    if not label.endswith("sandbox"):
        duplicated, extra = watch.calls - done, 0  # at-least-once: repeats reach the service
    assert watch.growth < RSS_GROWTH_BOUND, (
        f"load/{label}: RSS grew {watch.growth / MIB:.1f} MiB over {n:,} operations"
    )
    notes = watch.describe(n)
    lost = n - done - sum(dead.values())
    return Result(
        "load", label, n, done, dead, lost, duplicated, extra_valid_links=extra, notes=notes
    ), watch


async def embedded_rows(sizes: Sizes, work: Path) -> list[Result]:
    """Embedded queue: no-op at the small and the big backlog, then the sandbox."""
    rows: list[tuple[Result, Watch]] = []
    for label, n in (("no-op", sizes.small), ("no-op", sizes.big), ("sandbox", sizes.sandbox)):
        url = f"sqlite:///{work / f'{label}-{n}.db'}"
        env = {**_base_env(), "BOT_OPERATIONS_QUEUE_URL": url}
        async with SqliteTransport(url) as transport:
            rows.append(await drain(f"embedded, {label}", env, transport, n, sizes, work))
    (_, small), (noop, big), (sandbox, _) = rows
    noop.notes = check_noop(noop.transport, big, small, sizes)
    return [noop, sandbox]


async def localstack_rows(sizes: Sizes, work: Path) -> list[Result]:
    """LocalStack: the no-op service, then the sandbox, each on fresh queues."""
    folder = work / "localstack"
    folder.mkdir()
    try:
        server = await asyncio.to_thread(start_localstack, folder)
    except ServerUnavailable as error:
        unavailable(str(error))
    rows: list[Result] = []
    try:
        for label in ("LocalStack, no-op", "LocalStack, sandbox"):
            pair = await create_queue_pair(server, "load")
            env = {**_base_env(), **server.env(), "BOT_OPERATIONS_QUEUE_URL": pair.url}
            env["BOT_OPERATIONS_DLQ_URL"] = pair.dlq_url
            config = server.client_config()
            async with SqsTransport(pair.url, pair.dlq_url, client_config=config) as transport:
                row, _ = await drain(label, env, transport, sizes.localstack, sizes, work)
            rows.append(row)
    finally:
        await asyncio.to_thread(stop, server)
    return rows


async def run(size: Size, workdir: Path) -> list[Result]:
    """Every row of the load scenario at ``size``."""
    sizes = SIZES[size]
    return [*await embedded_rows(sizes, workdir), *await localstack_rows(sizes, workdir)]


SCENARIOS = [
    Scenario(
        "load",
        run,
        "A backlog drained by one worker: RSS bounded, per-operation cost flat as it grows.",
    )
]
