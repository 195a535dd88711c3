"""The rig of the Telegram and poison scenarios: a world, operations, queues, real workers on
the real Telegram service against the in-process sandbox, and what they left behind.

A run enqueues the operations, starts the workers, lets the scenario's ``drive`` break and
mend the sandbox while they work, waits until the queue holds nothing, stops the workers and
reads one outcome event per operation from an embedded outcomes queue (whatever the main
queue's transport). Side effects are counted from the sandbox's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from botqueue import BotQueueProducer
from botqueue.observability.outcomes import OutcomeEvent
from botqueue.operations import AnyOperation, InviteUser, RemoveUser
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.sandbox.channel import IN_CHAT
from botqueue.sandbox.world import DEFAULT_WORLD
from botqueue.telegram.membership import invite_link_name
from botqueue.transports import SqliteTransport
from botqueue.transports.base import Transport
from botqueue.transports.sqs import SqsTransport
from tests.chaos import _workers, parts
from tests.chaos.scenario import Result
from tests.integration import sqs_servers
from tests.integration.worker_process import sample

CHANNEL = -1001000000001  # the default world's channel where the bot may invite and restrict
FIRST_INVITEE = 100_000
FIRST_MEMBER = 200_000
MAX_RETRIES = 1
"""Two attempts about 1 s apart (the worker's backoff starts at 1 s): every fault here
outlasts that budget many times."""
Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


def world(count: int, extra_members: Sequence[int] = ()) -> dict[str, Any]:
    """The default world plus ``count`` users to invite and ``count`` members to remove."""
    spec = copy.deepcopy(DEFAULT_WORLD)
    members = [FIRST_MEMBER + n for n in range(count)] + list(extra_members)
    people = [FIRST_INVITEE + n for n in range(count)] + members
    spec["users"] += [{"id": u, "first_name": f"User {u}"} for u in people]
    spec["channels"][0]["members"] += members
    return spec


def operations(count: int, max_retries: int = MAX_RETRIES) -> list[AnyOperation]:
    """Two invites of new users for every removal of a member, each in a group of its own."""
    common: dict[str, Any] = {"channel_id": str(CHANNEL), "max_retries": max_retries}
    return [
        RemoveUser(user_id=FIRST_MEMBER + n, subscription_id=f"s{n}", reason="expiry", **common)
        if n % 3 == 2
        else InviteUser(user_id=FIRST_INVITEE + n, subscription_id=f"s{n}", order_id="o", **common)
        for n in range(count)
    ]


@dataclass
class Queue:
    """Where a run's operations go, and how a worker is told so."""

    transport: str
    env: dict[str, str]
    open: Callable[[], Transport]


def embedded(workdir: Path) -> Queue:
    """A fresh embedded queue in ``workdir``."""
    url = f"sqlite:///{workdir / 'queue.db'}"
    return Queue("embedded", {"BOT_OPERATIONS_QUEUE_URL": url}, lambda: SqliteTransport(url))


@contextlib.asynccontextmanager
async def localstack(workdir: Path) -> AsyncIterator[Queue]:
    """A queue pair on a LocalStack of its own, stopped at the end (about 15 s to start).

    Under pytest a LocalStack that cannot start skips (fails under CI); elsewhere it raises.
    """
    async with parts.localstack(workdir / "localstack") as server:
        pair = await sqs_servers.create_queue_pair(server, "chaos")
        env = {**server.env(), "BOT_OPERATIONS_QUEUE_URL": pair.url,
               "BOT_OPERATIONS_DLQ_URL": pair.dlq_url}  # fmt: skip
        config = server.client_config()
        yield Queue(
            "localstack", env, lambda: SqsTransport(pair.url, pair.dlq_url, client_config=config)
        )


@dataclass
class Rig:
    """One run in progress: the sandbox, the workers, the outcomes queue, timestamps."""

    sandbox: SandboxServer
    control: SandboxControl
    workers: list[_workers.Worker]
    outcomes: SqliteTransport
    marks: dict[str, float] = field(default_factory=dict)

    async def finished(self) -> int:
        """Outcome events published so far (one per finished operation)."""
        return (await self.outcomes.stats()).visible

    async def until_finished(self, count: int, within: float = 120.0) -> None:
        """Wait until at least ``count`` operations have finished."""
        deadline = time.monotonic() + within
        while await self.finished() < count:
            assert time.monotonic() < deadline, f"{count} operations not finished in time"
            await asyncio.sleep(0.05)

    async def seconds_to_next(self, within: float = 120.0) -> float:
        """Seconds from now until one more operation finishes."""
        began, before = time.monotonic(), await self.finished()
        await self.until_finished(before + 1, within)
        return time.monotonic() - began


@dataclass
class Observed:
    """What a run left behind: outcome events, the workers' metrics and output, the sandbox."""

    ops: dict[str, AnyOperation]
    events: dict[str, OutcomeEvent]
    scrapes: list[Scrape]
    outputs: list[str]
    sandbox: SandboxServer
    queue_dead_letters: int
    marks: dict[str, float]

    def metric(self, name: str, **labels: str) -> list[float]:
        """One sample of every worker's last scrape."""
        return [sample(scrape, name, **labels) for scrape in self.scrapes]

    def attempts(self) -> dict[int, int]:
        """How many operations finished after each number of attempts."""
        counts: dict[int, int] = {}
        for event in self.events.values():
            counts[event.attempts] = counts.get(event.attempts, 0) + 1
        return dict(sorted(counts.items()))

    def finished_as(self, status: str, kind: type[AnyOperation] | None = None) -> list[str]:
        """Message ids of the operations (of one type) that finished with ``status``."""
        return [
            message_id
            for message_id, op in self.ops.items()
            if (kind is None or isinstance(op, kind))
            and (event := self.events.get(message_id)) is not None
            and event.status == status
        ]

    def result(self, scenario: str, transport: str, notes: str, recover_s: float | None) -> Result:
        """The table's row; asserts that the DLQ holds what the events say."""
        done = sum(1 for e in self.events.values() if e.status in ("succeeded", "noop"))
        dead: dict[str, int] = {}
        for event in self.events.values():
            if event.status in ("dead_lettered", "failed"):
                kind = event.failure_kind or event.status
                dead[kind] = dead.get(kind, 0) + 1
        assert sum(dead.values()) == self.queue_dead_letters, (
            f"{scenario}/{transport}: {self.queue_dead_letters} on the DLQ, events say {dead}"
        )
        duplicated, extra_links = self.side_effects()
        return Result(
            scenario,
            transport,
            len(self.ops),
            done,
            dead,
            lost=len(self.ops) - done - sum(dead.values()),
            duplicated=duplicated,
            extra_valid_links=extra_links,
            recover_s=recover_s,
            notes=notes,
        )

    def side_effects(self) -> tuple[int, int]:
        """Invite messages beyond one per user and valid links beyond one per subscription;
        asserts that every operation reported done took effect."""
        state = self.sandbox.state
        channel = state.channels[CHANNEL]
        sent: dict[int, int] = {}
        for message in state.messages:
            sent[message.chat_id] = sent.get(message.chat_id, 0) + 1
        valid: dict[str | None, int] = {}
        for link in state.links.values():
            if not link.is_revoked:
                valid[link.name] = valid.get(link.name, 0) + 1
        duplicated = extra = 0
        for message_id, op in self.ops.items():
            event = self.events.get(message_id)
            done = event is not None and event.status == "succeeded"
            if isinstance(op, InviteUser):
                duplicated += max(0, sent.get(op.user_id, 0) - 1)
                extra += max(0, valid.get(invite_link_name(op.subscription_id), 0) - 1)
                assert not done or sent.get(op.user_id), f"invite of {op.user_id}: no message"
            elif isinstance(op, RemoveUser) and done:
                status = channel.status_of(op.user_id)
                assert status not in IN_CHAT, f"removal of {op.user_id} done, user is {status}"
        return duplicated, extra


Drive = Callable[[Rig], Awaitable[float | None]]
"""A scenario's fault: breaks and mends the sandbox while the workers work; returns the
seconds from the fault's end to the first operation finished after it (or None)."""


async def run(
    queue: Queue,
    workdir: Path,
    spec: dict[str, Any],
    ops: Sequence[AnyOperation],
    drive: Drive,
    *,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    workers: int = 2,
    within: float = 300.0,
    prepare: Callable[[SandboxControl], Awaitable[None]] | None = None,
) -> tuple[Observed, float | None]:
    """Enqueue ``ops``, ``prepare`` the sandbox, run ``workers`` workers through ``drive``
    until the queue holds nothing, and return what they left behind with ``drive``'s recovery
    time."""
    # The queue named in the URL: the worker and this reader must agree on it.
    outcomes_url = f"sqlite:///{workdir / f'outcomes-{queue.transport}.db'}?queue=outcomes"
    async with (
        SandboxServer(spec) as sandbox,
        SandboxControl(sandbox.url) as control,
        contextlib.aclosing(queue.open()) as transport,
        SqliteTransport(outcomes_url) as outcomes,
    ):
        ids = await BotQueueProducer(transport).enqueue_many(ops)
        if prepare is not None:
            await prepare(control)
        full_env = {
            **queue.env,
            "TELEGRAM_BOT_TOKEN": sandbox.token,
            "TELEGRAM_API_BASE_URL": sandbox.url,
            "TELEGRAM_REQUEST_TIMEOUT": "2",  # a hung call fails after 2 s, not the default 10
            "BOT_OPERATIONS_OUTCOMES_URL": outcomes_url,
            "BOTQUEUE_WAIT_TIME": "1",
            "BOTQUEUE_METRICS_PORT": "0",
            **(env or {}),
        }
        procs = [await _workers.start(full_env, *args, name=f"w{n}") for n in range(workers)]
        try:
            urls = [await metrics_url(proc) for proc in procs]
            rig = Rig(sandbox, control, procs, outcomes)
            recover_s = await drive(rig)
            await settled(transport, within, procs)
            rig.marks["settled"] = time.monotonic()
            scrapes = [await scrape(url) for url in urls]
        finally:
            codes = await _workers.stop_all(procs)
        outputs = [proc.output() for proc in procs]
        assert codes == [0] * workers, f"exit codes {codes}:\n{outputs[0][-3000:]}"
        events = await read_events(outcomes)
        dead = (await transport.stats()).dead_letters
    ops_by_id = dict(zip(ids, ops, strict=True))
    return Observed(ops_by_id, events, scrapes, outputs, sandbox, dead, rig.marks), recover_s


async def metrics_url(worker: _workers.Worker, within: float = 60.0) -> str:
    """The worker's metrics server, from its "observability server listening" line."""
    deadline = time.monotonic() + within
    while True:
        for _, line in worker.lines:
            if "observability server listening" in line:
                return str(json.loads(line)["url"])
        assert worker.returncode is None, _workers.output(worker)
        assert time.monotonic() < deadline, _workers.output(worker)
        await asyncio.sleep(0.05)


async def scrape(url: str) -> Scrape:
    """Every sample of a worker's /metrics by (name, labels)."""
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
        text = await response.text()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def settled(transport: Transport, within: float, procs: Sequence[_workers.Worker]) -> None:
    """Wait until the queue holds nothing, visible or in flight."""
    deadline = time.monotonic() + within
    while True:
        stats = await transport.stats()
        if stats.visible == 0 and stats.in_flight == 0:
            return
        for proc in procs:
            assert proc.returncode is None, f"{proc.name} exited:\n{_workers.output(proc)}"
        assert time.monotonic() < deadline, f"not settled after {within:.0f} s: {stats}"
        await asyncio.sleep(0.5)


async def read_events(outcomes: SqliteTransport) -> dict[str, OutcomeEvent]:
    """Every outcome event, the last one per operation."""
    events: dict[str, OutcomeEvent] = {}
    while batch := await outcomes.receive(10, wait_seconds=0):
        for message in batch:
            event = OutcomeEvent.model_validate_json(message.body)
            events[event.message_id] = event
        # Deleted, since a FIFO group's next event is not delivered while one is in flight.
        await outcomes.delete_batch([message.receipt for message in batch])
    return events
