"""A library consumer is a worker: ``BotQueueConsumer(TelegramBotService())`` reads the worker's
settings and shares, with a ``botqueue worker`` on the same embedded queue, the token's flood
budget and invite-link ledger (the files beside the queue's), and its log level.

Against the sandbox's strict per-token flood limit, the two together draw no 429, and every
user is left with at most one valid invite link although the user's two invites may be sent
by different processes.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from botqueue import BotQueueProducer
from botqueue.operations import InviteUser
from botqueue.sandbox import SandboxControl, SandboxControlError, SandboxServer
from botqueue.transports import SqliteTransport

from .test_shared_budget import settled
from .worker_process import ROOT, WorkerProcess

PREMIUM = "-1001000000001"
USERS = range(7000, 7012)
LINK = re.compile(r"https://t\.me/\+[A-Za-z0-9_-]+")

# The spec's usage: a service that reads TELEGRAM_BOT_TOKEN, a consumer, start and stop.
LIBRARY_SCRIPT = """
import asyncio
from botqueue import BotQueueConsumer, ConsumerHooks
from botqueue.telegram import TelegramBotService

class Done(ConsumerHooks):
    count = 0
    def on_success(self, op, message, outcome, seconds):
        Done.count += 1

async def main():
    consumer = BotQueueConsumer(TelegramBotService(), hooks=[Done()])
    await consumer.start()
    while consumer.held or not await drained(consumer):
        await asyncio.sleep(0.1)
    await consumer.stop()
    print("library done:", Done.count)

async def drained(consumer):
    stats = await consumer.transport.stats()
    return stats.visible == 0 and stats.in_flight == 0

asyncio.run(main())
"""


def environment(sandbox: SandboxServer, db_url: str) -> dict[str, str]:
    """The one configuration both processes read."""
    return {
        "BOT_OPERATIONS_QUEUE_URL": db_url,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "TELEGRAM_RATE_LIMIT": "10",
        "TELEGRAM_CHANNEL_RATE": "1000",
        "BOTQUEUE_WAIT_TIME": "0.2",
        "BOTQUEUE_LOG_LEVEL": "warning",
    }


async def enqueue_invites(db_url: str, control: SandboxControl) -> None:
    """Two invites per user (two orders): one group each, so they run one after the other,
    by whichever process receives them."""
    for user in USERS:
        await control.add_user({"id": user, "first_name": f"U{user}"})
    ops = [
        InviteUser(user_id=user, channel_id=PREMIUM, subscription_id=f"s{user}", order_id=order)
        for order in ("o-1", "o-2")
        for user in USERS
    ]
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue_many(ops)


async def run_library(env: dict[str, str]) -> tuple[int, str]:
    """The library consumer in a process of its own; its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LIBRARY_SCRIPT,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def valid_links(control: SandboxControl, user: int) -> int:
    """How many of the links sent to ``user`` still let someone in (each tried by a probe
    user of its own, so that trying one does not spend another)."""
    valid = 0
    for n, message in enumerate(await control.messages(chat_id=user)):
        for link in LINK.findall(str(message.get("text", ""))):
            probe = 900_000 + user * 10 + n
            await control.add_user({"id": probe, "first_name": "probe"})
            try:
                await control.join(probe, link)
            except SandboxControlError:
                continue  # revoked (or expired): not valid
            valid += 1
    return valid


async def test_a_library_consumer_and_a_cli_worker_share_budget_and_ledger(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    await control.set_flood(10)
    await enqueue_invites(db_url, control)
    env = environment(sandbox, db_url)
    async with WorkerProcess(env, "--drain") as worker:
        code, library_output = await run_library(env)
        assert await worker.wait_exit(120) == 0, worker.output()
    assert code == 0, library_output
    assert await settled(db_url)
    counts = await control.requests()
    assert counts["rate_limited"] == 0, counts
    assert "Traceback" not in library_output, library_output
    # Both processes worked (else this would prove nothing about sharing).
    done = int(library_output.rsplit("library done:", 1)[1])
    assert 0 < done < 2 * len(USERS), library_output
    for user in USERS:
        assert await valid_links(control, user) <= 1, user


async def test_the_library_consumer_opens_the_sidecars_and_keeps_the_log_level(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    await enqueue_invites(db_url, control)
    code, output = await run_library(environment(sandbox, db_url))
    assert code == 0, output
    assert await settled(db_url)
    queue_file = Path(db_url.removeprefix("sqlite:///"))
    assert queue_file.with_name("queue.flood.db").exists()
    assert queue_file.with_name("queue.links.db").exists()
    # BOTQUEUE_LOG_LEVEL=warning: no line per operation; and never the token.
    assert "Bot operation done" not in output, output
    assert sandbox.token not in output
