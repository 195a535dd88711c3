"""A Telegram outage of minutes with a backlog queued: what is dead-lettered, what is done, how
soon work resumes after Telegram does.

The sandbox answers 502 to every Bot API call for ``--outage-seconds`` while a consumer with
the real Telegram service and the spec's defaults (maxRetries 3, backoff 1, 2, 4 s) works a
backlog of ``--ops`` removals (one getChatMember each). Side by side in one run:

- ``botqueue``: the bot-wide pause and the outage circuit breaker (the defaults);
- ``per-operation retries``: the same consumer with the bot state switched off, i.e. each
  operation retrying on its own schedule, as botqueue did before.

    .venv/bin/python bench/bench_outage.py --outage-seconds 600 --ops 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from typing import Any

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.logs import configure_logging
from botqueue.observability.outcomes import OutcomeEvent, OutcomeHooks
from botqueue.operations import RemoveUser
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.service import TelegramBotService
from botqueue.transports import SqliteTransport

PREMIUM = "-1001000000001"
USER_BASE = 200_000


async def run(contender: str, ops: int, outage: float, lead: float) -> dict[str, Any]:
    """One contender through one outage; returns its figures."""
    async with SandboxServer() as sandbox, SandboxControl(sandbox.url) as control:
        for n in range(ops):
            await control.add_user({"id": USER_BASE + n, "first_name": f"U{n}"})
        service = TelegramBotService(sandbox.token, api_url=sandbox.url, request_timeout=5.0)
        await service.start()
        events: list[tuple[float, OutcomeEvent]] = []
        with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
            async with SqliteTransport(f"sqlite:///{tmp}/queue.db") as transport:
                await BotQueueProducer(transport).enqueue_many(
                    RemoveUser(
                        user_id=USER_BASE + n,
                        channel_id=PREMIUM,
                        subscription_id=f"s{n}",
                        reason="expiry",
                    )
                    for n in range(ops)
                )
                consumer = BotQueueConsumer(
                    service,
                    transport,
                    drain=True,
                    wait_time_seconds=1,
                    log_operations=False,
                    hooks=[OutcomeHooks([lambda e: events.append((time.monotonic(), e))])],
                )
                if contender != "botqueue":
                    consumer.bot_state = consumer.processor.bot_state = None
                started = time.monotonic()
                running = asyncio.create_task(consumer.run())
                await asyncio.sleep(lead)  # some work done before Telegram goes away
                await control.inject_fault("*", 502, "Bad Gateway", count=10_000_000)
                await asyncio.sleep(outage)
                await control.clear_faults()
                recovered = time.monotonic()
                await running
                finished = time.monotonic()
                stats = await transport.stats()
        await service.aclose()
    after = [at for at, event in events if at >= recovered and event.status != "dead_lettered"]
    return {
        "contender": contender,
        "ops": ops,
        "done_before_outage": sum(1 for at, _ in events if at < started + lead),
        "outage_s": outage,
        "done": sum(1 for _, e in events if e.status in ("succeeded", "noop")),
        "dead_lettered": stats.dead_letters,
        "first_done_after_recovery_s": round(after[0] - recovered, 2) if after else None,
        "max_attempts": max((e.attempts for _, e in events), default=0),
        "total_s": round(finished - started, 1),
    }


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every contender, one after the other on the same machine."""
    configure_logging("warning")  # the breaker's open/close lines still show
    results = []
    for contender in ("botqueue", "per-operation retries"):
        result = await run(contender, args.ops, args.outage_seconds, args.lead_seconds)
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="operations queued (1000)")
    parser.add_argument(
        "--outage-seconds", type=float, default=600.0, help="seconds every call answers 502"
    )
    parser.add_argument(
        "--lead-seconds", type=float, default=2.0, help="seconds of normal work before it"
    )
    args = parser.parse_args(argv)
    if args.ops < 1 or args.outage_seconds < 0 or args.lead_seconds < 0:
        parser.error("--ops must be at least 1 and the seconds not negative")
    return args


if __name__ == "__main__":
    asyncio.run(main(parse()))
