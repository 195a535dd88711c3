"""Bad input (issue 12, point 4): hypothesis-generated bodies sent raw to the embedded queue and
to LocalStack, past the producer, then worked by a ``botqueue worker --drain`` subprocess.

Every body a transport accepts must end done (it decodes: the service saw it) or dead-lettered
as ``undecodable`` with exactly the decode error naming the problem; the worker exits 0; its
resident memory is sampled throughout and must stay under a ceiling. A transport may refuse a
body at send (over 1 MiB, text that is not Unicode, characters SQS does not take), and must
accept everything else, including a body of exactly the size limit.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botqueue.errors import DecodeError
from botqueue.logs import redact_secrets
from botqueue.operations import AnyOperation, decode_operation
from botqueue.service import Outcome
from botqueue.transports import (
    FAILURE_ATTRIBUTE,
    MAX_MESSAGE_BYTES,
    OutgoingMessage,
    SqliteTransport,
    Transport,
)
from botqueue.transports.sqs import SqsTransport
from tests.chaos import _workers
from tests.chaos.bad_input_bodies import Body, generate
from tests.chaos.scenario import Result, Scenario, Size
from tests.integration.sqs_servers import SqsServer, create_queue_pair, start_localstack, stop

COUNTS: dict[Size, int] = {"reduced": 200, "full": 2000}
RSS_CEILING_MB = 400.0
"""The worker's resident memory must stay below this, whatever it is sent (10 bodies of 1 MiB
in flight at once included)."""
# Characters an SQS message may carry (its XML rule); anything else is refused at send.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def op_key(op: AnyOperation) -> str:
    """An operation's wire JSON without its timestamp (a body that has none gets "now" at
    decode, so the worker's and this process's decodes differ only there)."""
    fields = json.loads(op.to_json())
    del fields["timestamp"]
    return json.dumps(fields, sort_keys=True)


class RecordingService:
    """A bot service that succeeds at once and appends each operation's wire JSON to the file
    named by CHAOS_BAD_INPUT_RECORD, for ``--service tests.chaos.scenario_bad_input:...``."""

    def __init__(self) -> None:
        path = os.environ["CHAOS_BAD_INPUT_RECORD"]
        self._out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the worker's life)

    def _record(self, op: AnyOperation) -> Outcome:
        self._out.write(op_key(op) + "\n")
        return Outcome()

    async def invite_user(self, op: AnyOperation) -> Outcome:
        """Record the invite."""
        return self._record(op)

    async def remove_user(self, op: AnyOperation) -> Outcome:
        """Record the removal."""
        return self._record(op)

    async def verify_permissions(self, op: AnyOperation) -> Outcome:
        """Record the check."""
        return self._record(op)


@dataclass
class Sent:
    """What was sent and what the transport answered."""

    accepted: dict[str, Body] = field(default_factory=dict)  # message id -> body
    refused: list[tuple[Body, str]] = field(default_factory=list)


async def send_raw(transport: Transport, bodies: list[Body], sqs: bool) -> Sent:
    """Send every body as it is, 10 at a time, each with its own group and deduplication id."""
    sent = Sent()
    run = uuid.uuid4().hex[:8]
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        messages = [
            OutgoingMessage(body.text, f"g{(start + i) % 40}", f"{run}-{start + i}")
            for i, body in enumerate(chunk)
        ]
        for body, result in zip(chunk, await transport.send_batch(messages), strict=True):
            if result.message_id is not None:
                sent.accepted[result.message_id] = body
            else:
                sent.refused.append((body, result.error or "?"))
    for body, error in sent.refused:
        assert may_refuse(body.text, sqs), f"{body.kind} body refused without cause: {error}"
    return sent


def may_refuse(text: str, sqs: bool) -> bool:
    """Whether a transport may refuse this body: too large, not Unicode, or (SQS) empty or
    holding characters outside SQS's set."""
    try:
        size = len(text.encode())
    except UnicodeEncodeError:
        return True
    return size > MAX_MESSAGE_BYTES or (sqs and (not text or bool(_NOT_XML.search(text))))


def expected_error(text: str) -> str | None:
    """The dead letter's error for a body (None: it decodes and must be done)."""
    try:
        decode_operation(text)
    except DecodeError as error:
        return redact_secrets(str(error))
    return None


async def sample_rss(pid: int, into: list[tuple[float, float]], done: asyncio.Event) -> None:
    """(monotonic time, VmRSS in MiB) of a process every 0.1 s, until ``done`` or it exits."""
    status = Path(f"/proc/{pid}/status")
    while not done.is_set():
        try:
            text = await asyncio.to_thread(status.read_text)
        except OSError:
            return
        kib = re.search(r"VmRSS:\s+(\d+)", text)
        if kib:
            into.append((time.monotonic(), int(kib.group(1)) / 1024))
        await asyncio.sleep(0.1)


async def work(env: dict[str, str], workdir: Path, name: str) -> tuple[str, list[float], int]:
    """Run a draining worker with the recording service: its output, its RSS in MiB from its
    first line on (imports done), and its exit status."""
    samples: list[tuple[float, float]] = []
    done = asyncio.Event()
    worker = await _workers.start(
        {**env, "CHAOS_BAD_INPUT_RECORD": str(workdir / f"{name}.done"), "BOTQUEUE_WAIT_TIME": "1"},
        "--drain",
        "--service",
        "tests.chaos.scenario_bad_input:RecordingService",
        name=name,
    )
    sampler = asyncio.create_task(sample_rss(worker.process.pid, samples, done))
    try:
        code = await asyncio.wait_for(worker.process.wait(), 600)
    finally:
        done.set()
        await sampler
        if worker.returncode is None:
            await _workers.kill(worker)
    await _workers.stop(worker)  # reaps the readers
    output = worker.output()
    (workdir / f"{name}.log").write_text(output, errors="replace")
    ready = worker.lines[0][0] if worker.lines else 0.0
    rss = [mb for at, mb in samples if at >= ready] or [mb for _, mb in samples]
    return output, rss, code


@dataclass
class Settled:
    """How the accepted bodies ended."""

    done: int = 0
    lost: int = 0
    duplicated: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


async def settle(
    transport: Transport, sent: Sent, recorded: Counter[str], events: dict[str, dict[str, Any]]
) -> Settled:
    """Check every accepted body's end against what its own decode says it must be."""
    end = Settled()
    letters: dict[str, tuple[str, dict[str, Any]]] = {}
    for letter_id, text, failure in await dead_letters(transport):
        letters[str(failure.get("originalMessageId", letter_id))] = (text, failure)
    by_body = {text: key for key, (text, failure) in letters.items() if not failure}
    expected_done: Counter[str] = Counter()
    for message_id, body in sent.accepted.items():
        error = expected_error(body.text)
        # A dead letter without its record (no room beside its body) is known by its body.
        letter = letters.pop(message_id, None) or letters.pop(by_body.get(body.text, ""), None)
        if error is None:
            expected_done[op_key(decode_operation(body.text))] += 1
            if letter is not None:
                end.problems.append(f"valid {body.kind} body dead-lettered: {letter[1]}")
            continue
        if letter is None:
            end.lost += 1
            end.problems.append(f"{body.kind} body neither done nor dead: {body.text[:80]!r}")
            continue
        end.dead[str(letter[1].get("kind", "undecodable"))] += 1
        end.problems += _record_problems(body, letter[1], error, events.get(message_id))
    end.problems += [f"a dead letter that was never sent: {m}" for m in letters]
    missing = sum((expected_done - recorded).values())
    if missing:
        lacking = [op[:120] for op in (expected_done - recorded)]
        end.problems.append(f"{missing} valid bodies were never performed: {lacking[:5]}")
    end.done = sum((expected_done & recorded).values())
    end.lost += missing
    end.duplicated = sum((recorded - expected_done).values())
    return end


async def dead_letters(transport: Transport) -> list[tuple[str, str, dict[str, Any]]]:
    """Every dead letter as (id, body, failure record). On SQS they are received and deleted:
    a listing shows at most 10 of each group, and the DLQ is not needed afterwards."""
    if not isinstance(transport, SqsTransport):
        return [(d.message_id, d.body, dict(d.failure or {})) for d in await transport.dlq_list()]
    url, found = await transport.dlq_url(), []
    while batch := await transport.receive_from(url, 10, 1, 300):
        for m in batch:
            raw = m.attributes.get(FAILURE_ATTRIBUTE)
            found.append((m.message_id, m.body, json.loads(raw) if raw else {}))
        await transport.delete_from(url, [m.receipt for m in batch])
    return found


def _record_problems(
    body: Body, failure: dict[str, Any], error: str, event: dict[str, Any] | None
) -> list[str]:
    """What is wrong with a dead letter's record: its kind, its reason, or its absence (allowed
    only for a body that leaves SQS no room for it, whose outcome event must then say why)."""
    if not failure:
        if len(body.text.encode()) < MAX_MESSAGE_BYTES - 1024:
            return [f"{body.kind} body of {len(body.text)} chars lost its record"]
        failure = {"kind": (event or {}).get("failureKind"), "error": (event or {}).get("error")}
    reason = str(failure.get("error") or "")
    if failure.get("kind") != "undecodable" or not reason:
        return [f"{body.kind} body dead-lettered without its reason: {failure}"]
    if reason != error and not (failure.get("truncated") and error.startswith(reason)):
        return [f"{body.kind} body: record says {reason!r}, expected {error!r}"]
    return []


async def outcome_events(url: str) -> dict[str, dict[str, Any]]:
    """Every outcome event on the outcomes queue, by message id."""
    events: dict[str, dict[str, Any]] = {}
    async with SqliteTransport(url) as outcomes:
        while batch := await outcomes.receive(10, wait_seconds=0):
            for message in batch:
                event = json.loads(message.body)
                events[event["messageId"]] = event
            await outcomes.delete_batch([m.receipt for m in batch])
    return events


async def one_transport(
    name: str, transport: Transport, env: dict[str, str], bodies: list[Body], workdir: Path
) -> Result:
    """Send, work, settle and check one transport; its row."""
    sent = await send_raw(transport, bodies, sqs=name != "embedded")
    outcomes = f"sqlite:///{workdir / f'{name}-outcomes.db'}?queue=outcomes"
    output, rss, code = await work(
        {**env, "BOT_OPERATIONS_OUTCOMES_URL": outcomes}, workdir, f"worker-{name}"
    )
    assert code == 0, f"bad-input/{name}: the worker exited {code}:\n{output[-3000:]}"
    assert "Traceback" not in output, f"bad-input/{name}: a traceback:\n{output[-3000:]}"
    record_file = workdir / f"worker-{name}.done"
    recorded = Counter(record_file.read_text().splitlines()) if record_file.exists() else Counter()
    events = await outcome_events(outcomes)
    end = await settle(transport, sent, recorded, events)
    stats = await transport.stats()
    if stats.visible or stats.in_flight:
        end.problems.append(f"left on the queue after the drain: {stats}")
    assert not end.problems, f"bad-input/{name}:\n" + "\n".join(end.problems[:20])
    assert rss and max(rss) < RSS_CEILING_MB, f"bad-input/{name}: RSS peaked at {max(rss):.0f} MiB"
    kinds = Counter(body.kind for body in bodies)
    refused = Counter(body.kind for body, _ in sent.refused)
    return Result(
        scenario="bad-input",
        transport=name,
        operations=len(sent.accepted),
        done=end.done,
        dead_lettered=dict(end.dead),
        lost=end.lost,
        duplicated=end.duplicated,
        notes=(
            f"{len(bodies)} bodies ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))});"
            f" refused at send: {', '.join(f'{k} {n}' for k, n in sorted(refused.items()))};"
            f" worker RSS {rss[0]:.0f}/{max(rss):.0f}/{rss[-1]:.0f} MiB (start/peak/end),"
            f" exit {code}"
        ),
    )


async def run(size: Size, workdir: Path) -> list[Result]:
    """The embedded queue and LocalStack, each sent the same bodies."""
    bodies = generate(COUNTS[size])
    rows = []
    db = f"sqlite:///{workdir / 'bad-input.db'}"
    async with SqliteTransport(db) as embedded:
        rows.append(
            await one_transport(
                "embedded", embedded, {"BOT_OPERATIONS_QUEUE_URL": db}, bodies, workdir
            )
        )
    server: SqsServer = await asyncio.to_thread(start_localstack, workdir)
    try:
        pair = await create_queue_pair(server, "bad")
        env = {
            **server.env(),
            "BOT_OPERATIONS_QUEUE_URL": pair.url,
            "BOT_OPERATIONS_DLQ_URL": pair.dlq_url,
        }
        async with SqsTransport(pair.url, pair.dlq_url, client_config=server.client_config()) as t:
            with warnings.catch_warnings():
                # aiohttp's advice for a request body over 1 MiB (a batch carrying a body at
                # the limit); pytest's warnings-as-errors would otherwise fail the send.
                warnings.filterwarnings("ignore", "Sending a large body", ResourceWarning)
                rows.append(await one_transport("localstack", t, env, bodies, workdir))
    finally:
        await asyncio.to_thread(stop, server)
    return rows


SCENARIOS = [
    Scenario(
        "bad-input",
        run,
        "hypothesis-generated raw bodies (valid, near-valid, wrong types, unknown types, junk, "
        "nested, not Unicode, huge, at the size limit) worked by a draining worker",
    )
]
