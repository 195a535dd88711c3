"""SIGKILL: two real workers killed at random moments while they invite and remove users in a
sandbox with Bot API latency, each replaced at once; then the sandbox must hold exactly the
state the operations ask for, on the embedded queue and on LocalStack.

The plan: users in a few channels, each (user, channel) group a strictly alternating run of
invites and removals (one subscription per invite-remove cycle; a group that starts with a
removal starts from a member), so any reordering shows in the end state. Simulated users open
most links as they arrive. What is checked, per group, from the sandbox's state:

* last operation an invite: the user is a member, or holds a valid link of the group (not
  revoked, not expired, not used up); either way, at most one way in: a member holds no
  valid link, a non-member exactly one. More is an extra valid link.
* last operation a removal: the user is not in the channel and holds no valid link (a link
  left valid after a removal is an extra valid link: the removed user could come back).
* every invite sent at least one message carrying a link of its subscription (an earlier
  removal that did not happen would make it a no-op, so this checks removals as well);
  messages beyond one per invite are counted as duplicated side effects.

An operation whose effect is missing and which has no dead letter is lost; ``done`` is every
other operation without a dead letter, its effect checked as above. (The workers' "done" log
lines are counted too, for the notes, but cannot be the measure: a worker writes its log in
batches every 20 ms, and a SIGKILL loses the batch it had not written.) ``recover_s`` is the
median time from a kill to its replacement's first finished operation, start-up included.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botqueue.operations import AnyOperation, InviteUser, RemoveUser, decode_operation
from botqueue.producer import to_message
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.sandbox.channel import IN_CHAT
from botqueue.sandbox.state import JoinRefused, SandboxState
from botqueue.telegram.membership import invite_link_name
from botqueue.transports import open_transport
from botqueue.transports.base import Transport
from botqueue.transports.sqs import SqsTransport
from tests.chaos import _workers, parts
from tests.chaos.scenario import Result, Scenario, Size
from tests.integration import sqs_servers

CHANNELS = [-1002000000001, -1002000000002, -1002000000003]
OWNER = 1
SIZES = {"reduced": (120, 40, 8.0, 90.0), "full": (1000, 300, 60.0, 270.0)}
"""operations, users, seconds the enqueuing is spread over, longest run per transport."""
WORKER_ENV = {
    "BOTQUEUE_CONCURRENCY": "8",
    "BOTQUEUE_VISIBILITY_TIMEOUT": "5",  # a killed worker's messages come back after 5 s
    "BOTQUEUE_WAIT_TIME": "0.5",
    "BOTQUEUE_GRACE_PERIOD": "10",
    "BOTQUEUE_LOG_LEVEL": "info",
    "TELEGRAM_RATE_LIMIT": "100",  # the sandbox has no flood control here; pace is not tested
    "TELEGRAM_CHANNEL_RATE": "50",
}
DONE_LINE = "Bot operation done"


@dataclass
class Plan:
    """The world, the operations in enqueue order, and each group's operations in order."""

    world: dict[str, Any]
    ops: list[AnyOperation]
    groups: dict[tuple[int, int], list[AnyOperation]] = field(default_factory=dict)


def make_plan(size: Size, rng: random.Random) -> Plan:
    """Alternating invite/remove runs over (user, channel) groups, interleaved at random."""
    target, n_users, _, _ = SIZES[size]
    users = list(range(50001, 50001 + n_users))
    members: dict[int, list[int]] = {c: [] for c in CHANNELS}
    groups: dict[tuple[int, int], list[AnyOperation]] = {}
    total = 0
    while total < target:
        user, channel = rng.choice(users), rng.choice(CHANNELS)
        if (user, channel) in groups:
            continue
        length = min(rng.randint(1, 5), target - total)
        starts_with_removal = rng.random() < 0.4
        if starts_with_removal:
            members[channel].append(user)  # a subscriber from before, to be removed
        groups[(user, channel)] = _alternating(user, channel, length, starts_with_removal)
        total += length
    world = {
        "bots": [{"token": "123456789:AAF-sandbox-token-00000000000000000", "id": 123456789,
                  "username": "sandbox_bot", "first_name": "Sandbox Bot"}],
        "channels": [
            {"id": c, "title": f"Chaos {i}", "type": "channel", "creator": OWNER,
             "bot_rights": {"can_invite_users": True, "can_restrict_members": True},
             "members": members[c]}
            for i, c in enumerate(CHANNELS)
        ],
        "users": [{"id": u, "first_name": f"U{u}", "started_bot": True}
                  for u in [OWNER, *users]],
    }  # fmt: skip
    pending = {key: list(ops) for key, ops in groups.items()}
    ordered: list[AnyOperation] = []
    while pending:
        key = rng.choice(list(pending))
        ordered.append(pending[key].pop(0))
        if not pending[key]:
            del pending[key]
    return Plan(world, ordered, groups)


def _alternating(user: int, channel: int, length: int, removal_first: bool) -> list[AnyOperation]:
    ops: list[AnyOperation] = []
    cycle = 0 if removal_first else 1
    invite_next = not removal_first
    for _ in range(length):
        sub = f"k{user}c{CHANNELS.index(channel)}s{cycle}"
        if invite_next:
            ops.append(InviteUser(user_id=user, channel_id=str(channel),
                                  subscription_id=sub, order_id=f"o{sub}"))  # fmt: skip
        else:
            ops.append(RemoveUser(user_id=user, channel_id=str(channel),
                                  subscription_id=sub, reason="expiry"))  # fmt: skip
            cycle += 1
        invite_next = not invite_next
    return ops


def _key(op: AnyOperation) -> tuple[str, str]:
    assert isinstance(op, InviteUser | RemoveUser)
    return op.operation_type, op.subscription_id


async def _joiner(state: SandboxState, rng: random.Random, joined: Counter[str]) -> None:
    """Users open most links they are sent, a moment after they arrive."""
    seen = 0
    while True:
        for message in state.messages[seen:]:
            link = message.text.rsplit(None, 1)[-1]
            if link.startswith("https://t.me/+") and rng.random() < 0.6:
                delay = rng.uniform(0.0, 0.3)
                asyncio.get_running_loop().call_later(
                    delay, _join, state, message.chat_id, link, joined
                )
        seen = len(state.messages)
        await asyncio.sleep(0.05)


def _join(state: SandboxState, user: int, link: str, joined: Counter[str]) -> None:
    try:
        joined[state.join(user, link)] += 1
    except JoinRefused as refused:
        joined[f"refused: {refused}"] += 1


def _valid(state: SandboxState, url: str) -> bool:
    link = state.links[url]
    if link.is_revoked or (link.expire_date is not None and state.now() >= link.expire_date):
        return False
    return link.member_limit is None or state.link_usage(link) < link.member_limit


@dataclass
class Tally:
    """What the sandbox, the DLQ and the workers' logs say about the plan."""

    done: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: int = 0
    extra_links: list[str] = field(default_factory=list)
    unsent_valid: int = 0  # created, never sent (killed in between): known only to admins


def tally(plan: Plan, state: SandboxState, dead: dict[tuple[str, str], str]) -> Tally:
    """Check every group's end state and every invite's messages against the plan."""
    result = Tally(dead=Counter(dead.values()))
    names = {url: link.name for url, link in state.links.items()}
    sent: Counter[str | None] = Counter()
    delivered: set[str] = set()
    for message in state.messages:
        url = message.text.rsplit(None, 1)[-1]
        sent[names.get(url)] += 1
        delivered.add(url)
    result.unsent_valid = sum(
        1 for url in state.links if url not in delivered and _valid(state, url)
    )
    for (user, channel), ops in plan.groups.items():
        subs = {invite_link_name(op.subscription_id) for op in ops}  # type: ignore[union-attr]
        valid = sum(
            1 for url, link in state.links.items()
            if link.chat_id == channel and link.name in subs and url in delivered
            and _valid(state, url)
        )  # fmt: skip
        member = state.channels[channel].status_of(user) in IN_CHAT
        last = ops[-1]
        where = f"user {user} in {channel} after {[o.operation_type[0] for o in ops]}"
        if isinstance(last, InviteUser):
            reached = member or valid > 0
            allowed = 0 if member else 1
        else:
            reached = not member
            allowed = 0
        if not reached and _key(last) not in dead:
            result.lost.append(f"{where}: member={member}, valid links={valid}")
        if valid > allowed:
            result.extra_links.append(f"{where}: member={member}, valid links={valid}")
        for op in ops:
            if isinstance(op, InviteUser):
                n = sent[invite_link_name(op.subscription_id)]
                result.duplicated += max(0, n - 1)
                if n == 0 and _key(op) not in dead and op is not last:
                    result.lost.append(f"{where}: invite {op.subscription_id} sent nothing")
    result.done = len(plan.ops) - len(result.lost) - len(dead)
    return result


async def dead_letters(transport: Transport) -> dict[tuple[str, str], str]:
    """Every dead letter's operation, with its failure kind."""
    found: dict[tuple[str, str], str] = {}
    for letter in await transport.dlq_list():
        kind = str((letter.failure or {}).get("kind", "unknown"))
        try:
            found[_key(decode_operation(letter.body))] = kind
        except Exception:
            found[("undecodable", letter.message_id)] = kind
    return found


def done_operations(workers: list[_workers.Worker]) -> set[tuple[str, str]]:
    """The distinct operations any worker logged as done."""
    done: set[tuple[str, str]] = set()
    for worker in workers:
        for _, line in worker.lines:
            if DONE_LINE in line:
                with contextlib.suppress(ValueError, KeyError):
                    fields = json.loads(line)
                    done.add((fields["operationType"], fields["subscriptionId"]))
    return done


async def _enqueue(transport: Transport, ops: list[AnyOperation], spread: float) -> None:
    # The producer's messages, sent without its one log line per operation.
    pause = spread / max(1, len(ops) / 10)
    for start in range(0, len(ops), 10):
        results = await transport.send_batch([to_message(op) for op in ops[start : start + 10]])
        assert all(r.message_id for r in results), f"not enqueued: {results}"
        await asyncio.sleep(pause)


async def _drained(transport: Transport) -> bool:
    stats = await transport.stats()
    return stats.visible == 0 and stats.in_flight == 0


@dataclass
class Chaos:
    """The two running workers, every worker ever started, and each kill's replacement."""

    env: dict[str, str]
    rng: random.Random
    running: list[_workers.Worker] = field(default_factory=list)
    started: list[_workers.Worker] = field(default_factory=list)
    kills: list[tuple[float, _workers.Worker]] = field(default_factory=list)

    async def start(self) -> _workers.Worker:
        """One more worker."""
        worker = await _workers.start(self.env, name=f"worker-{len(self.started)}")
        self.running.append(worker)
        self.started.append(worker)
        return worker

    async def kill_one(self) -> None:
        """SIGKILL a running worker at random and start its replacement at once."""
        victim = self.running.pop(self.rng.randrange(len(self.running)))
        await _workers.kill(victim)
        replacement = await self.start()
        assert victim.killed_at is not None
        self.kills.append((victim.killed_at, replacement))

    def recover_s(self) -> float | None:
        """Median time from a kill to its replacement's first finished operation."""
        times = [
            first - killed
            for killed, worker in self.kills
            if (first := worker.first_line(DONE_LINE)) is not None
        ]
        return statistics.median(times) if times else None


async def _run_chaos(
    transport: Transport, chaos: Chaos, plan: Plan, size: Size, state: SandboxState
) -> Counter[str]:
    """Run until drained, killing as it goes; what the simulated users' joins answered."""
    _, _, spread, longest = SIZES[size]
    deadline = time.monotonic() + longest
    for _ in range(2):
        await chaos.start()
    enqueuing = asyncio.create_task(_enqueue(transport, plan.ops, spread))
    joined: Counter[str] = Counter()
    joiner = asyncio.create_task(_joiner(state, random.Random(chaos.rng.random()), joined))
    try:
        calm = 0
        while calm < 2:
            if time.monotonic() > deadline:
                stats = (await transport.stats()).as_dict()
                tails = "".join(f"\n--- {w.name}:\n{_workers.output(w, 15)}" for w in chaos.running)
                raise AssertionError(f"not drained in {longest:.0f} s: {stats}{tails}")
            await asyncio.sleep(chaos.rng.uniform(0.5, 3.0))
            drained = enqueuing.done() and await _drained(transport)
            calm = calm + 1 if drained else 0
            if not drained:
                await chaos.kill_one()
        await enqueuing
        codes = await _workers.stop_all(chaos.running)
        assert codes == [0] * len(codes), f"graceful stops answered {codes}"
        await asyncio.sleep(0.5)  # the last joins scheduled by the joiner
        return joined
    finally:
        joiner.cancel()
        enqueuing.cancel()
        for worker in chaos.running:
            await _workers.kill(worker)


async def _one_transport(
    name: str, transport: Transport, env: dict[str, str], size: Size, seed: int
) -> Result:
    rng = random.Random(seed)
    plan = make_plan(size, rng)
    async with SandboxServer(plan.world) as sandbox, SandboxControl(sandbox.url) as control:
        await control.set_latency("*", 0.035, jitter=0.4)  # 21-49 ms per call
        chaos = Chaos(
            {**env, **WORKER_ENV, "TELEGRAM_BOT_TOKEN": sandbox.token,
             "TELEGRAM_API_BASE_URL": sandbox.url},
            rng,
        )  # fmt: skip
        joined = await _run_chaos(transport, chaos, plan, size, sandbox.state)
        dead = await dead_letters(transport)
        logged = done_operations(chaos.started)
        found = tally(plan, sandbox.state, dead)
        for worker in chaos.started:
            assert sandbox.token not in worker.output(), f"{worker.name} printed the token"
    assert not found.lost, f"{name}: lost {len(found.lost)}: {found.lost[:5]}"
    assert not found.extra_links, f"{name}: extra links: {found.extra_links[:5]}"
    assert not dead, f"{name}: unexpected dead letters: {dead}"
    assert logged <= {_key(op) for op in plan.ops}, f"{name}: done lines of unknown operations"
    return Result(
        scenario="sigkill",
        transport=name,
        operations=len(plan.ops),
        done=found.done,
        dead_lettered=dict(found.dead),
        lost=len(found.lost),
        duplicated=found.duplicated,
        extra_valid_links=len(found.extra_links),
        recover_s=chaos.recover_s(),
        notes=f"{len(chaos.kills)} kills; {joined['member']} joins through links; "
        f"{len(logged)} logged done (a kill loses its worker's last 20 ms of log); "
        f"{found.unsent_valid} links created but never sent left valid; "
        "2 workers x 8, visibility 5 s, latency 21-49 ms",
    )


async def _embedded(size: Size, workdir: Path) -> Result:
    url = f"sqlite:///{workdir / 'queue.db'}"
    transport = open_transport(url, visibility_timeout=5)
    try:
        return await _one_transport(
            "embedded", transport, {"BOT_OPERATIONS_QUEUE_URL": url}, size, 12
        )
    finally:
        await transport.aclose()


async def _localstack(size: Size, workdir: Path) -> Result:
    async with parts.localstack(workdir / "localstack") as server:
        pair = await sqs_servers.create_queue_pair(server, "sigkill")
        transport = SqsTransport(
            pair.url, pair.dlq_url, visibility_timeout=5, client_config=server.client_config()
        )
        env = {**server.env(), "BOT_OPERATIONS_QUEUE_URL": pair.url,
               "BOT_OPERATIONS_DLQ_URL": pair.dlq_url,
               # Both workers run on this host: the invite-link ledger in a file they share.
               "TELEGRAM_INVITE_LEDGER_URL": f"sqlite:///{workdir / 'links.db'}"}  # fmt: skip
        try:
            return await _one_transport("localstack", transport, env, size, 13)
        finally:
            await transport.aclose()


async def run(size: Size, workdir: Path) -> list[Result]:
    """Both transports, one after the other."""
    return [await _embedded(size, workdir), await _localstack(size, workdir)]


SCENARIOS = [
    Scenario(
        "sigkill",
        run,
        "2 workers SIGKILLed at random every 0.5-3 s and replaced, invites and removals in "
        "alternating runs per user, sandbox latency 21-49 ms; the end state must match",
    )
]
