"""Telegram outage, flood and partial outage (issue 12, point 3), against two real workers.

Every operation may retry once (``maxRetries`` 1, backoff 1 s): a retry budget of about a
second, which every fault below outlasts many times over.

* telegram-outage: while the workers invite and remove users, every Bot API call hangs (until
  the 2 s request timeout) for half the outage, then answers 502 for the other half.
  Nothing may be dead-lettered, every operation must finish on its first attempt (the bot-wide
  pause of the circuit breaker, see docs/telegram.md), and each worker must show the pause in
  its metrics and its log. ``recover_s``: from the end of the outage to the first operation
  finished after it.
* telegram-flood: three 429 answers with a long ``retry_after`` (above the flood hold, so they
  pause the bot rather than wait inside a call): nothing dead-lettered, every operation on its
  first attempt although three 429s are more than its retries, and the run lasts at least
  ``retry_after`` from the first 429. ``recover_s``: from the end of the last pause.
* telegram-partial: createChatInviteLink answers 502 for good, every other method works:
  every invite is dead-lettered after its own retries (``exhausted``, 2 attempts) and every
  removal completes. The breaker may still open for a moment (three invites failing at once
  look like an outage until the next answered call closes it): reported, not asserted.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from botqueue.operations import InviteUser, RemoveUser
from tests.chaos import telegram_rig as rig_
from tests.chaos.scenario import Result, Scenario, Size
from tests.chaos.telegram_rig import MAX_RETRIES, Observed, Rig

OUTAGE = {"reduced": (40, 10.0), "full": (300, 60.0)}
"""operations, seconds of outage"""
FLOOD = {"reduced": (40, 5), "full": (300, 30)}
"""operations, retry_after of each 429"""
FLOOD_ANSWERS = MAX_RETRIES + 2  # more 429s than an operation has attempts
PARTIAL = {"reduced": 30, "full": 150}
PAUSED_LINE = "Telegram unavailable: the bot is paused"
UNREVOKED_LINE = "could not revoke an undelivered invite link"
FOREVER = 1_000_000  # "count" of a fault or hang that lasts until the faults are cleared


def _paused(observed: Observed, reason: str) -> list[float]:
    return observed.metric("botqueue_bot_paused_seconds_total", reason=reason)


def _assert_all_done_first_time(observed: Observed, result: Result) -> None:
    name = f"{result.scenario}/{result.transport}"
    assert result.dead_total == 0, f"{name}: dead-lettered {result.dead_lettered}"
    assert result.done == result.operations, f"{name}: {result.done} of {result.operations} done"
    # The fault cost no attempt: neither its retries nor the queue's receive count grew.
    assert observed.attempts() == {1: result.operations}, f"{name}: {observed.attempts()}"


# -- outage ------------------------------------------------------------------------------


def _outage_drive(count: int, seconds: float) -> rig_.Drive:
    async def drive(rig: Rig) -> float:
        await rig.until_finished(max(1, count // 10))
        rig.marks["fault"] = time.monotonic()
        await rig.control.hang("*", FOREVER)
        await asyncio.sleep(seconds / 2)
        # A fault is checked before a hang: from here every call answers 502 at once.
        await rig.control.inject_fault("*", 502, "Bad Gateway", FOREVER)
        await asyncio.sleep(seconds / 2)
        rig.marks["finished_in_outage"] = await rig.finished()
        await rig.control.clear_faults()
        return await rig.seconds_to_next()

    return drive


async def _outage(size: Size, workdir: Path) -> list[Result]:
    count, seconds = OUTAGE[size]
    rows = [await _outage_on(rig_.embedded(workdir), workdir, count, seconds)]
    async with rig_.localstack(workdir) as queue:
        rows.append(await _outage_on(queue, workdir, count, seconds))
    return rows


async def _outage_on(queue: rig_.Queue, workdir: Path, count: int, seconds: float) -> Result:
    observed, recover_s = await rig_.run(
        queue, workdir, rig_.world(count), rig_.operations(count), _outage_drive(count, seconds)
    )
    paused = _paused(observed, "telegram_unavailable")
    openings = [out.count(PAUSED_LINE) for out in observed.outputs]
    met = _outage_failures(observed)
    left_over = sum(out.count(UNREVOKED_LINE) for out in observed.outputs)
    notes = (
        f"{seconds:.0f} s: hung calls, then 502s; {sum(met):.0f} calls failed, the workers "
        f"paused {'/'.join(f'{p:.0f}' for p in paused)} s (breaker opened "
        f"{'/'.join(map(str, openings))} times); every operation on its first attempt; "
        f"{left_over} links the outage left valid revoked before the invite's next attempt"
    )
    result = observed.result("telegram-outage", queue.transport, notes, recover_s)
    _assert_all_done_first_time(observed, result)
    assert any(met), "no call met the outage"
    for failed, seconds_paused, opened in zip(met, paused, openings, strict=True):
        # A worker that met the outage paused, in its metrics and in its log.
        assert not failed or (seconds_paused > 0 and opened), (met, paused, openings)
    return result


def _outage_failures(observed: Observed) -> list[float]:
    """Per worker: Bot API calls that failed server-side or timed out."""
    return [
        sum(
            value
            for (name, labels), value in scrape.items()
            if name == "botqueue_telegram_requests_total"
            and dict(labels).get("status") in ("server_or_network", "timeout")
        )
        for scrape in observed.scrapes
    ]


# -- flood -------------------------------------------------------------------------------


def _flood_drive(count: int, retry_after: int) -> rig_.Drive:
    async def drive(rig: Rig) -> float:
        await rig.until_finished(max(1, count // 10))
        rig.marks["fault"] = time.monotonic()
        await rig.control.inject_fault("*", 429, count=FLOOD_ANSWERS, retry_after=retry_after)
        plan = rig.sandbox.sandbox.plan
        # Until the last 429 is answered (the sandbox has no event to wait on).
        while plan.faults:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        pause_ends = time.monotonic() + retry_after
        await asyncio.sleep(retry_after)
        rig.marks["finished_in_flood"] = await rig.finished()
        return await rig.seconds_to_next() + max(0.0, time.monotonic() - pause_ends)

    return drive


async def _flood(size: Size, workdir: Path) -> list[Result]:
    count, retry_after = FLOOD[size]
    observed, recover_s = await rig_.run(
        rig_.embedded(workdir),
        workdir,
        rig_.world(count),
        rig_.operations(count),
        _flood_drive(count, retry_after),
        env={"TELEGRAM_MAX_FLOOD_HOLD": "2"},  # so a 5 s retry_after pauses the bot
    )
    rate_limited = sum(observed.metric("botqueue_telegram_rate_limited_total"))
    flood_paused = _paused(observed, "flood")
    lasted = observed.marks["settled"] - observed.marks["fault"]
    notes = (
        f"{FLOOD_ANSWERS} x 429 retry_after {retry_after} s (max hold 2 s); {rate_limited:.0f} "
        f"429s met, paused {'/'.join(f'{p:.0f}' for p in flood_paused)} s (per worker); "
        f"{lasted:.0f} s from the first 429 to the end; every operation on its first attempt"
    )
    result = observed.result("telegram-flood", "embedded", notes, recover_s)
    _assert_all_done_first_time(observed, result)
    assert rate_limited == FLOOD_ANSWERS, f"the workers met {rate_limited} 429s"
    assert lasted >= retry_after, f"done {lasted:.1f} s after a {retry_after} s pause"
    assert max(flood_paused) >= retry_after, f"paused {flood_paused} s"
    return [result]


# -- partial outage ----------------------------------------------------------------------


async def _partial_drive(rig: Rig) -> None:
    return None  # the fault is in place before the workers start (see _partial)


async def _partial(size: Size, workdir: Path) -> list[Result]:
    count = PARTIAL[size]
    observed, _ = await rig_.run(
        rig_.embedded(workdir),
        workdir,
        rig_.world(count),
        rig_.operations(count),
        _partial_drive,
        prepare=lambda control: control.inject_fault(
            "createChatInviteLink", 502, "Bad Gateway", FOREVER
        ),
    )
    invites = [i for i, op in observed.ops.items() if isinstance(op, InviteUser)]
    removals = [i for i, op in observed.ops.items() if isinstance(op, RemoveUser)]
    dead = observed.finished_as("dead_lettered", InviteUser)
    attempts = {observed.events[i].attempts for i in dead}
    kinds = {observed.events[i].failure_kind for i in dead}
    paused = _paused(observed, "telegram_unavailable")
    openings = [out.count(PAUSED_LINE) for out in observed.outputs]
    link_calls = observed.sandbox.state.requests["createChatInviteLink"]
    notes = (
        f"createChatInviteLink 502 for good: invites dead-lettered after {sorted(attempts)} "
        f"attempts ({link_calls / len(invites):.1f} calls each), removals done; breaker "
        f"opened {'/'.join(map(str, openings))} times, paused "
        f"{'/'.join(f'{p:.1f}' for p in paused)} s (per worker)"
    )
    result = observed.result("telegram-partial", "embedded", notes, None)
    assert sorted(dead) == sorted(invites), f"{len(dead)} of {len(invites)} invites dead"
    assert kinds == {"exhausted"} and attempts == {MAX_RETRIES + 1}, (kinds, attempts)
    assert sorted(observed.finished_as("succeeded", RemoveUser)) == sorted(removals)
    return [result]


SCENARIOS = [
    Scenario(
        "telegram-outage",
        _outage,
        "every Bot API call hangs, then answers 502, for longer than the retry budget",
    ),
    Scenario("telegram-flood", _flood, "429s with a long retry_after, more than the retries"),
    Scenario("telegram-partial", _partial, "one method (createChatInviteLink) answers 502"),
]
