"""The bot token never leaves the worker: runs through failures of every kind, then a search of
all the output and records (logs, DLQ failure records, outcome events, metrics, health
answers, CLI output) for the token and for its secret half."""

from __future__ import annotations

import asyncio
import json
import socket
import sys

from botqueue import BotQueueProducer
from botqueue.operations import InviteUser, RemoveUser, VerifyPermissions
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.transports import SqliteTransport
from tests.obs_run import fill

from .worker_process import ROOT, WorkerProcess, sample, until

TOKEN = "7012345678:AAH-leak-test-Secret_0123456789abcdef"
PREMIUM, VIP, KICKED = "-1001000000001", "-1001000000002", "-1001000000004"


def assert_no_token(token: str, texts: dict[str, str]) -> None:
    """Neither the token nor its secret half appears in any of ``texts``."""
    secret = token.partition(":")[2]
    for where, text in texts.items():
        assert token not in text, f"the token leaked into {where}"
        assert secret not in text, f"the token's secret half leaked into {where}"


async def cli(*args: str, env: dict[str, str]) -> str:
    """Run a botqueue command; return its stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botqueue",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return out.decode()


async def records(db_url: str, env: dict[str, str]) -> dict[str, str]:
    """The DLQ (as `botqueue dlq list --json` prints it) and every outcome event."""
    events = []
    async with SqliteTransport(f"{db_url}?queue=bot-operations-outcomes") as outcomes:
        while batch := await outcomes.receive(10, wait_seconds=0):
            events += [m.body for m in batch]
            await outcomes.delete_batch([m.receipt for m in batch])
    dlq = await cli("dlq", "list", "--json", env=env)
    assert dlq.count("\n") >= 3, dlq
    return {"DLQ records": dlq, "outcome events": "\n".join(events)}


async def observe(worker: WorkerProcess) -> dict[str, str]:
    """Everything the worker's server answers."""
    return {path: (await worker.get(path))[1] for path in ("/metrics", "/healthz", "/readyz")}


async def test_scripted_failures_of_every_kind_leak_nothing(db_url: str) -> None:
    async with SqliteTransport(db_url) as transport:
        await fill(transport)
    env = {
        "BOT_OPERATIONS_QUEUE_URL": db_url,
        "BOT_OPERATIONS_OUTCOMES_URL": db_url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "BOTQUEUE_LOG_LEVEL": "debug",
        "BOTQUEUE_OUTCOME_HOOK": "tests.obs_services:raising_hook",
    }
    args = ("--service", "tests.obs_services:ScriptedService", "--metrics-port", "0")
    async with WorkerProcess(env, *args) as worker:
        await worker.listening()

        async def settled() -> bool:
            return sample(await worker.scrape(), "botqueue_messages_deleted_total") == 7

        await until(settled)
        served = await observe(worker)
        assert await worker.stop() == 0
    found = await records(db_url, worker.env)
    output = worker.output()
    # The failures really carried the token, and it was replaced, not lost.
    assert output.count("<token>") >= 10 and "<token>" in found["DLQ records"]
    assert "<token>" in found["outcome events"]
    assert_no_token(TOKEN, {"worker output": output, **found, **served})


async def test_the_telegram_service_under_faults_leaks_nothing(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    token = sandbox.token
    ops = [
        InviteUser(user_id=1004, channel_id=PREMIUM, subscription_id="a", order_id="1"),
        InviteUser(user_id=1006, channel_id=PREMIUM, subscription_id="b", order_id="2"),
        InviteUser(user_id=1005, channel_id=PREMIUM, subscription_id="c", order_id="3"),
        RemoveUser(user_id=1001, channel_id=VIP, subscription_id="d", reason="refund"),
        RemoveUser(user_id=1003, channel_id=PREMIUM, subscription_id="e", reason="expiry"),
        VerifyPermissions(channel_id=KICKED, listing_id="f"),
        VerifyPermissions(channel_id=PREMIUM, listing_id="g"),
    ]
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue_many(ops)
    for method, code, text, extra in [
        ("getChatMember", 429, "Too Many Requests: retry after 1", {"retry_after": 1}),
        ("sendMessage", 500, "Internal Server Error", {}),
        ("unbanChatMember", 400, "Bad Request: chat not found", {}),
        ("createChatInviteLink", 502, "Bad Gateway", {}),
    ]:
        await control.inject_fault(method, code, text, **extra)
    await control.hang("getChatMember")  # answered by nothing: the client times out
    env = {
        "BOT_OPERATIONS_QUEUE_URL": db_url,
        "BOT_OPERATIONS_OUTCOMES_URL": db_url,
        "TELEGRAM_BOT_TOKEN": token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "TELEGRAM_REQUEST_TIMEOUT": "1",
        "TELEGRAM_MAX_FLOOD_HOLD": "0.5",  # so the 429 hands its message back too
        "BOTQUEUE_LOG_LEVEL": "debug",
    }
    async with WorkerProcess(env, "--metrics-port", "0") as worker:
        await worker.listening()

        async def settled() -> bool:
            return sample(await worker.scrape(), "botqueue_messages_deleted_total") == len(ops)

        await until(settled)
        served = await observe(worker)
        # Finally the token is revoked: the worker stops with an error, naming no token.
        await control.inject_fault("*", 401, "Unauthorized")
        async with SqliteTransport(db_url) as transport:
            await BotQueueProducer(transport).enqueue_verify_permissions(PREMIUM, "h")
        assert await worker.wait_exit() == 1
    assert "Telegram rejected the bot token" in worker.output()
    found = await records(db_url, worker.env)
    assert_no_token(token, {"worker output": worker.output(), **found, **served})

    # A worker whose Bot API server is not there at all (a closed port): it waits for
    # Telegram, logging each try, until it is stopped.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with WorkerProcess({**env, "TELEGRAM_API_BASE_URL": closed}) as unreachable:

        async def retrying() -> bool:
            return unreachable.output().count("could not start") >= 2

        await until(retrying)
        assert await unreachable.stop() == 0
    assert_no_token(token, {"unreachable worker output": unreachable.output()})
    events = [json.loads(line) for line in found["outcome events"].splitlines()]
    assert len(events) == len(ops)
