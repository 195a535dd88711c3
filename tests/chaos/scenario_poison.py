"""Poison (issue 12, point 5): a service that raises for one user and hangs for another.

Two real workers run ``--service tests.chaos.poison_service:service``: the real Telegram
service against the sandbox, except that every operation of one user raises
ZeroDivisionError and every operation of another never returns. Each poisoned user has an
invite and then a removal in their group, enqueued before everyone else's work. Both must end
in the DLQ after their retries (``exhausted``, 2 attempts each; the hang ended by
BOTQUEUE_OPERATION_TIMEOUT), and every other operation must complete meanwhile.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from botqueue.operations import AnyOperation, InviteUser, RemoveUser
from tests.chaos import telegram_rig as rig_
from tests.chaos.poison_service import HANGING_USER, RAISING_USER
from tests.chaos.scenario import Result, Scenario, Size
from tests.chaos.telegram_rig import CHANNEL, MAX_RETRIES, Observed, Rig

SIZES = {"reduced": (40, 3), "full": (300, 5)}
"""healthy operations, seconds of BOTQUEUE_OPERATION_TIMEOUT"""
POISONED = {RAISING_USER: "ZeroDivisionError", HANGING_USER: "OperationTimeoutError"}


def poisoned_operations() -> list[AnyOperation]:
    """An invite, then a removal, for each poisoned user (one FIFO group each)."""
    ops: list[AnyOperation] = []
    for user in POISONED:
        common = {"user_id": user, "channel_id": str(CHANNEL), "max_retries": MAX_RETRIES}
        ops.append(InviteUser(subscription_id=f"p{user}", order_id="o", **common))
        ops.append(RemoveUser(subscription_id=f"p{user}", reason="refund", **common))
    return ops


async def _nothing(rig: Rig) -> None:
    return None  # the poison is in the service: nothing to break in the sandbox


def _at(stamp: str) -> float:
    return dt.datetime.fromisoformat(stamp).timestamp()


async def _poison_on(queue: rig_.Queue, workdir: Path, count: int, seconds: int) -> Result:
    ops = poisoned_operations() + rig_.operations(count)
    observed, _ = await rig_.run(
        queue,
        workdir,
        rig_.world(count),
        ops,
        _nothing,
        env={"BOTQUEUE_OPERATION_TIMEOUT": str(seconds)},
        args=("--service", "tests.chaos.poison_service:service"),
    )
    return _check(observed, queue.transport, seconds)


def _check(observed: Observed, transport: str, timeout: int) -> Result:
    name = f"poison/{transport}"
    poisoned = {i for i, op in observed.ops.items() if getattr(op, "user_id", 0) in POISONED}
    for message_id in poisoned:
        event = observed.events.get(message_id)
        assert event is not None, f"{name}: a poisoned operation has no outcome"
        expected = POISONED[observed.ops[message_id].user_id]  # type: ignore[union-attr]
        got = (event.status, event.failure_kind, event.attempts, event.error_type)
        assert got == ("dead_lettered", "exhausted", MAX_RETRIES + 1, expected), f"{name}: {got}"
        if expected == "OperationTimeoutError":
            assert f"within {timeout} s" in (event.error or ""), event.error
    healthy = [i for i in observed.ops if i not in poisoned]
    undone = [i for i in healthy if observed.events[i].status not in ("succeeded", "noop")]
    assert not undone, f"{name}: {len(undone)} healthy operations not done"
    # "Meanwhile": how much healthy work finished before the hanging user's last dead letter.
    hang_end = max(
        _at(observed.events[i].finished_at)
        for i in poisoned
        if observed.ops[i].user_id == HANGING_USER  # type: ignore[union-attr]
    )
    before = sum(1 for i in healthy if _at(observed.events[i].finished_at) <= hang_end)
    notes = (
        f"ZeroDivisionError for one user, a hang for another (operation timeout {timeout} s): "
        f"their {len(poisoned)} operations dead-lettered after {MAX_RETRIES + 1} attempts; "
        f"{before} of {len(healthy)} others done before the hanging user's last dead letter"
    )
    return observed.result("poison", transport, notes, None)


async def _poison(size: Size, workdir: Path) -> list[Result]:
    count, timeout = SIZES[size]
    rows = [await _poison_on(rig_.embedded(workdir), workdir, count, timeout)]
    async with rig_.localstack(workdir) as queue:
        rows.append(await _poison_on(queue, workdir, count, timeout))
    return rows


SCENARIOS = [
    Scenario(
        "poison",
        _poison,
        "a service that raises for one user and hangs for another; the rest must complete",
    )
]
