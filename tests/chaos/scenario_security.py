"""Security (issue 12, point 7): a worker with a secret-looking token works through blocked
users (403), 502s, 500s, a 429, hung calls (timeouts) and a revoked token (401), on the embedded
queue and on LocalStack, with outcome events and metrics on; then a second worker starts with a
wrong token (401 at getMe). Everything they produced is searched for either token, its secret
half and its URL-encoded form: both workers' output, every DLQ record, every outcome event,
/metrics, /healthz, /readyz and the producer's exceptions. Also: the embedded queue's files are
0600 under umask 022, and every socket the worker listens on is a loopback one.

"The whole suite's output" is this scenario's own: the other scenarios keep their workers'
output in memory and their workdirs are deleted after them, so there is nothing to scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from botqueue import BotQueueProducer
from botqueue.errors import BotQueueError
from botqueue.operations import InviteUser, RemoveUser, VerifyPermissions
from botqueue.sandbox import DEFAULT_WORLD, SandboxControl, SandboxServer
from botqueue.transports import SqliteTransport, Transport
from botqueue.transports.sqs import SqsTransport
from tests.chaos import _workers
from tests.chaos.scenario import Result, Scenario, Size
from tests.chaos.scenario_bad_input import dead_letters
from tests.integration.sqs_servers import create_queue_pair, start_localstack, stop

BOT_ID = "123456789"
TOKEN = f"{BOT_ID}:AAH-chaos_Secret-0123456789abcdefgh"
"""The bot's token: a real token's shape, its secret half unlike anything else in the run."""
WRONG_TOKEN = f"{BOT_ID}:AAH-wrong_Secret-9876543210zyxwvut"
PREMIUM, VIP, KICKED = "-1001000000001", "-1001000000002", "-1001000000004"
OPERATIONS: dict[Size, int] = {"reduced": 2, "full": 10}  # rounds of the 8 operations below


def secrets_of(*tokens: str) -> dict[str, str]:
    """Every form a token must never take in output: whole, its secret half, URL-encoded."""
    forms = {}
    for token in tokens:
        forms[token] = "token"
        forms[token.partition(":")[2]] = "secret half"
        forms[quote(token, safe="")] = "URL-encoded token"
    return forms


def leaks(texts: dict[str, str], *tokens: str) -> list[str]:
    """Where any form of the tokens appears, as "<form> in <where>" lines."""
    return [
        f"the {form} appears in {where}"
        for where, text in texts.items()
        for secret, form in secrets_of(*tokens).items()
        if secret in text
    ]


def world() -> dict[str, Any]:
    """The default world with the bot's token replaced."""
    spec = copy.deepcopy(DEFAULT_WORLD)
    spec["bots"][0]["token"] = TOKEN
    return dict(spec)


def operations(rounds: int) -> list[InviteUser | RemoveUser | VerifyPermissions]:
    """Invites that succeed, meet a blocked user and one who never started the bot; removals;
    checks of a channel the bot administers and one it was kicked from."""
    ops: list[InviteUser | RemoveUser | VerifyPermissions] = []
    for n in range(rounds):
        ops += [
            InviteUser(user_id=1004, channel_id=PREMIUM, subscription_id=f"a{n}", order_id="1"),
            InviteUser(user_id=1006, channel_id=PREMIUM, subscription_id=f"b{n}", order_id="2"),
            InviteUser(user_id=1005, channel_id=VIP, subscription_id=f"c{n}", order_id="3"),
            InviteUser(user_id=1008, channel_id=VIP, subscription_id=f"h{n}", order_id="4"),
            RemoveUser(user_id=1001, channel_id=VIP, subscription_id=f"d{n}", reason="refund"),
            RemoveUser(user_id=1003, channel_id=PREMIUM, subscription_id=f"e{n}", reason="expiry"),
            VerifyPermissions(channel_id=KICKED, listing_id=f"f{n}"),
            VerifyPermissions(channel_id=PREMIUM, listing_id=f"g{n}"),
        ]
    return ops


async def faults(control: SandboxControl, rounds: int) -> None:
    """Failures of every kind the Bot API gives, each carrying the request's URL."""
    too_many = "Too Many Requests: retry after 1"
    await control.inject_fault("getChatMember", 429, too_many, count=rounds, retry_after=1)
    await control.inject_fault("sendMessage", 500, "Internal Server Error", count=rounds)
    await control.inject_fault("createChatInviteLink", 502, "Bad Gateway", count=rounds)
    await control.inject_fault("unbanChatMember", 400, "Bad Request: chat not found", count=1)
    await control.hang("getChatMember", count=rounds)  # answered by nothing: a client timeout


def listening(pid: int) -> list[tuple[str, int]]:
    """The (address, port) of every TCP socket process ``pid`` listens on (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    found.append(_address(fields[1], family))
    return found


def _address(hex_address: str, family: int) -> tuple[str, int]:
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # /proc prints each 32-bit word in host (little-endian) order.
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw), int(port, 16)


def file_modes(folder: Path) -> dict[str, int]:
    """Permission bits of every file under ``folder`` that belongs to an SQLite database."""
    return {
        str(path.relative_to(folder)): stat.S_IMODE(path.stat().st_mode)
        for path in folder.rglob("*")
        if path.is_file() and ".db" in path.name and "localstack" not in path.parts
    }


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run with this umask (the files' 0600 must not depend on a strict one)."""
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


async def scrape(url: str) -> tuple[dict[str, str], float]:
    """The worker server's three answers, and its count of settled (deleted) messages."""
    answers = {}
    async with aiohttp.ClientSession() as http:
        for path in ("/metrics", "/healthz", "/readyz"):
            async with http.get(url + path) as response:
                answers[path] = await response.text()
    deleted = sum(
        sample.value
        for family in text_string_to_metric_families(answers["/metrics"])
        for sample in family.samples
        if sample.name == "botqueue_messages_deleted_total"
    )
    return answers, deleted


async def server_url(worker: _workers.Worker, within: float = 60.0) -> str:
    """The URL from the worker's "observability server listening" line."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for _, line in worker.lines:
            if "observability server listening" in line:
                return str(json.loads(line)["url"])
        assert worker.returncode is None, _workers.output(worker)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no metrics server:\n{_workers.output(worker)}")


async def producer_errors(transport: Transport) -> str:
    """The text of exceptions the producer raises for bad calls."""
    producer = BotQueueProducer(transport)
    texts = []
    for call in (
        producer.enqueue_invite_user(0, "@x", "", "o"),
        producer.enqueue_verify_permissions(PREMIUM, idempotency_key=TOKEN + " "),
        producer.enqueue_remove_user(1, PREMIUM, "s", "ban"),  # type: ignore[arg-type]
    ):
        try:
            await call
        except BotQueueError as error:
            texts.append(f"{error!r} {error}")
    assert len(texts) == 3, texts
    return "\n".join(texts)


async def one_transport(
    name: str,
    transport: Transport,
    env: dict[str, str],
    sandbox: SandboxServer,
    size: Size,
    workdir: Path,
) -> tuple[Result, dict[str, str], dict[str, int]]:
    """Run the faults past a worker on one transport; its row and everything it produced."""
    ops = operations(OPERATIONS[size])
    async with SandboxControl(sandbox.url) as control:
        await control.reset()
        await faults(control, OPERATIONS[size])
        await BotQueueProducer(transport).enqueue_many(ops)
        outcomes = env["BOT_OPERATIONS_OUTCOMES_URL"]
        worker = await _workers.start(env, "--metrics-port", "0", name=f"security-{name}")
        try:
            url = await server_url(worker)
            binds = listening(worker.process.pid)
            deadline = time.monotonic() + 240
            while (answers := await scrape(url))[1] < len(ops):
                assert time.monotonic() < deadline, _workers.output(worker)
                assert worker.returncode is None, _workers.output(worker)
                await asyncio.sleep(0.2)
            # While the worker runs, with the databases open and their -wal and -shm present.
            modes = file_modes(workdir)
            # The token is revoked: the worker stops with an error that names no token.
            await control.inject_fault("*", 401, "Unauthorized", count=1000)
            await BotQueueProducer(transport).enqueue_verify_permissions(PREMIUM, "revoked")
            code = await asyncio.wait_for(worker.process.wait(), 120)
        finally:
            await _workers.stop(worker)
        await control.clear_faults()
    assert code == 1 and "Telegram rejected the bot token" in worker.output(), worker.output()
    assert binds and all(host in ("127.0.0.1", "::1") for host, _ in binds), binds
    letters = await dead_letters(transport)
    events = await outcome_texts(outcomes)
    texts = {
        f"{name} worker output": worker.output(),
        f"{name} DLQ records": "\n".join(json.dumps([b, f]) for _, b, f in letters),
        f"{name} outcome events": "\n".join(events),
        **{f"{name} {path}": text for path, text in answers[0].items()},
        f"{name} producer exceptions": await producer_errors(transport),
    }
    for seen in ("Bad Gateway", "Internal Server Error", "Timed out", "Forbidden", "Unauthorized"):
        assert seen in worker.output(), f"{name}: the faults did not happen ({seen})"
    assert letters and len(events) >= len(ops), f"{name}: {len(letters)} dead, {len(events)} events"
    dead: dict[str, int] = {}
    for _, _, failure in letters:
        dead[str(failure.get("kind"))] = dead.get(str(failure.get("kind")), 0) + 1
    statuses = [json.loads(event)["status"] for event in events]
    row = Result(
        scenario="security",
        transport=name,
        operations=len(ops),
        done=sum(status in ("succeeded", "noop") for status in statuses),
        dead_lettered=dead,
        lost=len(ops) - len(set(json.loads(e)["messageId"] for e in events)),
        notes=f"listening on {', '.join(f'{h}:{p}' for h, p in binds)}",
    )
    return row, texts, modes


async def outcome_texts(url: str) -> list[str]:
    """Every outcome event's JSON, consumed from the outcomes queue."""
    texts = []
    async with SqliteTransport(url) as outcomes:
        while batch := await outcomes.receive(10, wait_seconds=0):
            texts += [m.body for m in batch]
            await outcomes.delete_batch([m.receipt for m in batch])
    return texts


async def wrong_token(sandbox: SandboxServer, env: dict[str, str]) -> str:
    """A worker started with a token Telegram rejects: exit 2, one line; its output."""
    worker = await _workers.start({**env, "TELEGRAM_BOT_TOKEN": WRONG_TOKEN}, name="wrong-token")
    code = await asyncio.wait_for(worker.process.wait(), 120)
    await _workers.stop(worker)
    assert code == 2, f"a wrong token: exit {code}\n{worker.output()}"
    return worker.output()


async def unreachable(env: dict[str, str]) -> str:
    """A worker whose Bot API server is not there (a closed port): it retries getMe, a line
    each time, until stopped; its output."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    worker = await _workers.start({**env, "TELEGRAM_API_BASE_URL": closed}, name="unreachable")
    deadline = time.monotonic() + 60
    while worker.output().count("could not start") < 2:
        assert time.monotonic() < deadline and worker.returncode is None, worker.output()
        await asyncio.sleep(0.1)
    assert await _workers.stop(worker) == 0, worker.output()
    return worker.output()


def base_env(sandbox: SandboxServer, workdir: Path, name: str) -> dict[str, str]:
    """A worker's environment: the token, the sandbox, short timeouts, debug logs."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "TELEGRAM_REQUEST_TIMEOUT": "1",
        "TELEGRAM_MAX_FLOOD_HOLD": "0.5",  # the 429 hands its message back too
        "BOTQUEUE_LOG_LEVEL": "debug",
        "BOTQUEUE_WAIT_TIME": "0.5",
        "BOT_OPERATIONS_OUTCOMES_URL": f"sqlite:///{workdir / name}-outcomes.db?queue=outcomes",
    }


async def run(size: Size, workdir: Path) -> list[Result]:
    """Both transports, the wrong-token start, then the search and the file modes."""
    rows, texts = [], {}
    with umask(0o022):
        async with SandboxServer(world=world()) as sandbox:
            db = f"sqlite:///{workdir / 'security.db'}"
            env = {**base_env(sandbox, workdir, "embedded"), "BOT_OPERATIONS_QUEUE_URL": db}
            async with SqliteTransport(db) as embedded:
                row, found, modes = await one_transport(
                    "embedded", embedded, env, sandbox, size, workdir
                )
            rows.append(row)
            texts.update(found)
            texts["wrong-token worker output"] = await wrong_token(sandbox, env)
            texts["unreachable-API worker output"] = await unreachable(env)
            (workdir / "localstack").mkdir()
            server = await asyncio.to_thread(start_localstack, workdir / "localstack")
            try:
                pair = await create_queue_pair(server, "sec")
                env = {
                    **server.env(),
                    **base_env(sandbox, workdir, "localstack"),
                    "BOT_OPERATIONS_QUEUE_URL": pair.url,
                    "BOT_OPERATIONS_DLQ_URL": pair.dlq_url,
                }
                config = server.client_config()
                async with SqsTransport(pair.url, pair.dlq_url, client_config=config) as sqs:
                    row, found, _ = await one_transport(
                        "localstack", sqs, env, sandbox, size, workdir
                    )
                rows.append(row)
                texts.update(found)
            finally:
                await asyncio.to_thread(stop, server)
    found_leaks = leaks(texts, TOKEN, WRONG_TOKEN)
    assert not found_leaks, "\n".join(found_leaks)
    assert any(path.endswith("-wal") for path in modes), modes
    assert any(path.endswith("-shm") for path in modes), modes
    assert all(mode == 0o600 for mode in modes.values()), modes
    searched = sum(len(text) for text in texts.values())
    for row in rows:
        row.notes += (
            f"; no form of either token in {len(texts)} outputs ({searched:,} characters);"
            f" {len(modes)} database files (-wal, -shm included), all 0600"
        )
    return rows


SCENARIOS = [
    Scenario(
        "security",
        run,
        "403/429/500/502/timeouts/401 with outcomes and metrics on: no token anywhere; "
        "database files 0600; loopback binds",
    )
]
