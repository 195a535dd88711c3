"""`botqueue worker` with the Telegram service, as a real process against the sandbox."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from botqueue import BotQueueProducer
from botqueue.operations import InviteUser, RemoveUser
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.transports import SqliteTransport

ROOT = Path(__file__).resolve().parents[2]
PREMIUM = "-1001000000001"


async def start_worker(
    api_url: str, db_url: str, token: str, *args: str
) -> asyncio.subprocess.Process:
    """``botqueue worker`` on ``db_url`` against the Bot API server at ``api_url``."""
    env = dict(
        os.environ,
        BOT_OPERATIONS_QUEUE_URL=db_url,
        TELEGRAM_BOT_TOKEN=token,
        TELEGRAM_API_BASE_URL=api_url,
        BOTQUEUE_LOG_LEVEL="info",
    )
    env.pop("BOTQUEUE_SERVICE", None)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botqueue",
        "worker",
        "--wait-time",
        "1",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def run_worker(
    sandbox: SandboxServer, db_url: str, token: str, *args: str
) -> tuple[int, str, str]:
    process = await start_worker(sandbox.url, db_url, token, *args)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_invalid_token_stops_the_worker_at_once(sandbox: SandboxServer, db_url: str) -> None:
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue(
            InviteUser(user_id=1004, channel_id=PREMIUM, subscription_id="s", order_id="o")
        )
    wrong = "987654321:AAF-not-the-right-token-000000000000000"
    code, out, err = await run_worker(sandbox, db_url, wrong, "--drain")
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "TELEGRAM_BOT_TOKEN" in lines[0], err
    assert "Traceback" not in err
    assert wrong not in out + err
    async with SqliteTransport(db_url) as transport:
        stats = await transport.stats()
    assert (stats.visible, stats.dead_letters) == (1, 0)  # nothing dead-lettered


async def test_a_401_mid_run_stops_consuming_and_keeps_the_messages(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    ops = [
        RemoveUser(user_id=1001 + n, channel_id=PREMIUM, subscription_id=f"r{n}", reason="refund")
        for n in range(5)
    ]
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue_many(ops)
    # getMe at start succeeds; then the token is revoked.
    await control.inject_fault("getChatMember", 401, "Unauthorized", count=100)
    code, out, err = await run_worker(sandbox, db_url, sandbox.token, "--drain")
    assert code == 1, err
    assert "Traceback" not in err
    assert sandbox.token not in out + err
    async with SqliteTransport(db_url) as transport:
        stats = await transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (5, 0, 0)


async def test_worker_performs_operations_against_the_sandbox(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    ops = [
        InviteUser(user_id=1004, channel_id=PREMIUM, subscription_id="dan-1", order_id="o"),
        RemoveUser(user_id=1001, channel_id=PREMIUM, subscription_id="ann-1", reason="expiry"),
        InviteUser(user_id=1006, channel_id=PREMIUM, subscription_id="finn-1", order_id="o"),
    ]
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue_many(ops)
    code, out, err = await run_worker(sandbox, db_url, sandbox.token, "--drain")
    assert code == 0, err
    roster = await control.members(PREMIUM)
    assert 1001 not in roster["members"]
    (message,) = await control.messages(chat_id=1004)
    assert "https://t.me/+" in message["text"]
    async with SqliteTransport(db_url) as transport:
        (letter,) = await transport.dlq_list()
    assert json.loads(letter.body)["userId"] == 1006
    assert letter.failure is not None
    assert letter.failure["kind"] == "permanent"
    assert "blocked" in letter.failure["error"]
    assert sandbox.token not in out + err + json.dumps(letter.failure)


async def test_the_worker_starts_through_server_errors_on_getme(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue(
            InviteUser(user_id=1004, channel_id=PREMIUM, subscription_id="s", order_id="o")
        )
    await control.inject_fault("getMe", 502, "Bad Gateway", count=2)
    code, out, err = await run_worker(sandbox, db_url, sandbox.token, "--drain")
    assert code == 0, err
    retries = [line for line in (out + err).splitlines() if "could not start" in line]
    assert len(retries) == 2, out + err
    assert "Traceback" not in err
    (message,) = await control.messages(chat_id=1004)  # and then it did its work
    assert "https://t.me/+" in message["text"]


async def test_a_worker_waiting_for_telegram_stops_at_once_on_sigterm(db_url: str) -> None:
    from tests.integration.sqs_servers import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    token = "123456789:AAF-sandbox-token-00000000000000000"
    process = await start_worker(nowhere, db_url, token)
    assert process.stderr is not None
    seen = b""
    while b"could not start" not in seen:  # the first try failed; it is backing off now
        line = await asyncio.wait_for(process.stderr.readline(), 60)
        assert line, "the worker exited instead of retrying"
        seen += line
    process.terminate()
    _out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()
    assert b"Traceback" not in err
