"""``botqueue demo``: the embedded queue, the Bot API sandbox and a worker, in one process.

Nothing to configure: a realistic mix of operations goes through the real pipeline — producer,
SQLite FIFO queue, consumer, TelegramBotService over HTTP — against a local sandbox that
answers as Telegram does, with a few faults injected along the way.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .consumer import BotQueueConsumer, ConsumerHooks
from .operations import AnyOperation, InviteUser, RemoveUser, VerifyPermissions
from .producer import BotQueueProducer
from .retry import Backoff
from .sandbox import SandboxControl, SandboxServer
from .service import Outcome
from .telegram.limiter import FloodLimiter
from .telegram.service import TelegramBotService
from .transports import SqliteTransport
from .transports.base import ReceivedMessage

PREMIUM = "-1001000000001"  # "Premium Signals": the bot may invite and remove
VIP = "-1001000000002"  # "VIP Lounge": the bot may invite but lost the right to remove
NAMES = {
    1: "Olivia",
    2: "Adam",
    1001: "Ann",
    1002: "Ben",
    1003: "Cara",
    1004: "Dan",
    1005: "Eve",
    1006: "Finn",
    1007: "Gus",
    1008: "Hana",
    1009: "Ivan",
    1010: "Jo",
}


def scenario() -> list[tuple[str, AnyOperation]]:
    """What the demo's application enqueues, each with a line saying why."""

    def invite(user: int, sub: str, channel: str = PREMIUM) -> InviteUser:
        return InviteUser(
            user_id=user, channel_id=channel, subscription_id=sub, order_id=f"o-{sub}"
        )

    def remove(user: int, sub: str, reason: str, channel: str = PREMIUM) -> RemoveUser:
        return RemoveUser.model_validate(
            {"userId": user, "channelId": channel, "subscriptionId": sub, "reason": reason}
        )

    return [
        ("Dan subscribes", invite(1004, "sub-dan")),
        ("Hana subscribes", invite(1008, "sub-hana")),
        ("Jo subscribes", invite(1010, "sub-jo")),
        ("Ann renews (already a member)", invite(1001, "sub-ann-2")),
        ("Ben's subscription expires", remove(1002, "sub-ben", "expiry")),
        ("Cara is refunded", remove(1003, "sub-cara", "refund")),
        ("Ivan (banned earlier) subscribes again", invite(1009, "sub-ivan-2")),
        ("Finn subscribes (he blocked the bot)", invite(1006, "sub-finn")),
        ("Eve subscribes (never started the bot)", invite(1005, "sub-eve")),
        (
            "Ann cancels in VIP Lounge (bot lost its rights)",
            remove(1001, "sub-ann-vip", "cancellation", VIP),
        ),
        (
            "Listing 7: is Premium Signals sellable?",
            VerifyPermissions(channel_id=PREMIUM, listing_id="listing-7"),
        ),
        (
            "Listing 8: is VIP Lounge sellable?",
            VerifyPermissions(channel_id=VIP, listing_id="listing-8"),
        ),
    ]


class Progress(ConsumerHooks):
    """Tracks each operation's state for the live table and the summary."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.labels = labels  # message id -> description
        self.state = dict.fromkeys(labels, "queued")
        self.note = dict.fromkeys(labels, "")
        self.retries = 0

    def on_received(self, messages: Any) -> None:
        """Mark received operations as being worked on."""
        for message in messages:
            if self.state.get(message.message_id) in ("queued", "retrying"):
                self.state[message.message_id] = "working"

    def on_success(
        self, op: AnyOperation, message: ReceivedMessage, outcome: Outcome, seconds: float
    ) -> None:
        """Record the outcome."""
        self.state[message.message_id] = outcome.status
        self.note[message.message_id] = _describe(outcome.detail)

    def on_retry(
        self, op: AnyOperation, message: ReceivedMessage, error: BaseException, delay: float
    ) -> None:
        """Record the retry."""
        self.retries += 1
        self.state[message.message_id] = "retrying"
        self.note[message.message_id] = f"attempt {message.receive_count}: {error}"

    def on_dead_letter(
        self, op: AnyOperation | None, message: ReceivedMessage, failure: Mapping[str, Any]
    ) -> None:
        """Record the dead letter."""
        self.state[message.message_id] = "dead letter"
        self.note[message.message_id] = f"{failure['kind']}: {failure['error']}"

    def table(self) -> Table:
        """The live view: one row per operation."""
        table = Table(title="botqueue demo: operations", expand=False)
        table.add_column("operation")
        table.add_column("state")
        table.add_column("detail", overflow="fold", max_width=70)
        colours = {
            "succeeded": "green",
            "noop": "cyan",
            "dead letter": "red",
            "retrying": "yellow",
            "working": "blue",
            "queued": "dim",
        }
        for message_id, label in self.labels.items():
            state = self.state[message_id]
            table.add_row(label, f"[{colours[state]}]{state}[/]", self.note[message_id])
        return table


def _describe(detail: Mapping[str, Any]) -> str:
    if "inviteLink" in detail:
        return f"link {detail['inviteLink']} sent"
    if "verified" in detail:
        missing = ", ".join(detail["missingRights"]) or "none missing"
        return f"verified={detail['verified']} ({missing})"
    return ", ".join(f"{k}={v}" for k, v in detail.items())


async def run_demo(db: Path | None, console: Console | None = None) -> dict[str, int]:
    """Run the demo; return counts by final state."""
    console = console or Console()
    folder = tempfile.TemporaryDirectory(prefix="botqueue-demo-") if db is None else None
    path = db or Path(folder.name if folder else ".") / "demo.db"
    try:
        async with SandboxServer() as sandbox, SandboxControl(sandbox.url) as control:
            return await _run(sandbox, control, path, console)
    finally:
        if folder is not None:
            folder.cleanup()


async def _run(
    sandbox: SandboxServer, control: SandboxControl, path: Path, console: Console
) -> dict[str, int]:
    console.print(f"Bot API sandbox at {sandbox.url}; embedded queue in {path}")
    # Telegram misbehaves a little: two 502s on invite links and one flood-control answer.
    await control.inject_fault("createChatInviteLink", 502, "Bad Gateway", count=2)
    await control.inject_fault(
        "getChatMember", 429, "Too Many Requests: retry after 1", retry_after=1
    )
    service = TelegramBotService(sandbox.token, api_url=sandbox.url, limiter=FloodLimiter())
    started = time.monotonic()
    async with SqliteTransport(f"sqlite:///{path}") as transport:
        producer = BotQueueProducer(transport)
        steps = scenario()
        ids = await producer.enqueue_many([op for _, op in steps])
        progress = Progress(dict(zip(ids, [label for label, _ in steps], strict=True)))
        await service.start()
        consumer = BotQueueConsumer(
            service,
            transport,
            hooks=[progress],
            log_operations=False,
            drain=True,
            wait_time_seconds=1.0,
            backoff=Backoff(base=1.0),
        )
        with Live(progress.table(), console=console, refresh_per_second=8) as live:
            task = asyncio.create_task(consumer.run())
            while not task.done():
                live.update(progress.table())
                await asyncio.sleep(0.1)
            await task
            live.update(progress.table())
        await service.aclose()
        stats = await transport.stats()
    console.print()
    counts = _summary(progress, console, time.monotonic() - started)
    # The new subscribers open the links the bot sent them.
    joined = [await _open_link(control, message) for message in await control.messages()]
    console.print(f"Subscribers who opened their invite link: {sum(joined)}")
    roster = await control.members(PREMIUM)
    console.print(
        "Premium Signals now: members "
        + ", ".join(NAMES.get(u, str(u)) for u in sorted(roster["members"]))
        + "; banned "
        + (", ".join(NAMES.get(u, str(u)) for u in roster["banned"]) or "nobody")
    )
    requests = await control.requests()
    console.print(
        f"Telegram calls: {requests['total']} ({requests['rate_limited']} answered 429); "
        f"queue: {stats.visible} visible, {stats.in_flight} in flight, "
        f"{stats.dead_letters} dead letters"
    )
    return counts


async def _open_link(control: SandboxControl, message: Mapping[str, Any]) -> bool:
    link = next((w for w in str(message.get("text", "")).split() if "t.me/+" in w), None)
    if link is None:
        return False
    await control.join(int(message["chat_id"]), link)
    return True


def _summary(progress: Progress, console: Console, seconds: float) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in progress.state.values():
        counts[state] = counts.get(state, 0) + 1
    console.print(
        f"Done in {seconds:.1f} s: {counts.get('succeeded', 0)} succeeded, "
        f"{counts.get('noop', 0)} no-ops, {progress.retries} retries, "
        f"{counts.get('dead letter', 0)} dead-lettered:"
    )
    for message_id, state in progress.state.items():
        if state == "dead letter":
            console.print(f"  - {progress.labels[message_id]}: {progress.note[message_id]}")
    return counts


def main(db: Path | None) -> None:
    """Run the demo and print what happens."""
    asyncio.run(run_demo(db))
