"""Flood control against the sandbox: pacing under a per-token limit, and a 429 pausing all."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import Bot
from telegram.request import HTTPXRequest

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.errors import RetryableError
from botqueue.operations import RemoveUser, VerifyPermissions
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.errors import TelegramRetryableError
from botqueue.telegram.flood import Budget, FakeClock
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService, bot_api_base
from botqueue.transports import SqliteTransport

PREMIUM = "-1001000000001"


class Timeline:
    """Times at which requests left the client and 429 answers came back."""

    def __init__(self) -> None:
        self.sent: list[float] = []
        self.limited: list[float] = []
        self.refused = asyncio.Event()

    async def on_request(self, request: httpx.Request) -> None:
        self.sent.append(time.monotonic())

    async def on_response(self, response: httpx.Response) -> None:
        if response.status_code == 429:
            self.limited.append(time.monotonic())
            self.refused.set()


@pytest.fixture
async def timed_service(
    sandbox: SandboxServer,
) -> AsyncIterator[tuple[TelegramBotService, Timeline]]:
    timeline = Timeline()
    request = HTTPXRequest(
        httpx_kwargs={
            "event_hooks": {"request": [timeline.on_request], "response": [timeline.on_response]}
        }
    )
    bot = Bot(sandbox.token, base_url=bot_api_base(sandbox.url), request=request)
    service = TelegramBotService(
        sandbox.token, bot=bot, limiter=FloodLimiter(RateLimits(max_hold=5.0))
    )
    await service.start()
    yield service, timeline
    await service.aclose()


async def test_a_429_pauses_every_handler(
    timed_service: tuple[TelegramBotService, Timeline], control: SandboxControl
) -> None:
    service, timeline = timed_service
    await control.inject_fault(
        "getChatMember", 429, "Too Many Requests: retry after 2", retry_after=2
    )
    verify = VerifyPermissions(channel_id=PREMIUM)
    first = asyncio.create_task(service.verify_permissions(verify))
    await timeline.refused.wait()
    # Other handlers start while the bot is paused: none of them may call Telegram before the
    # pause ends, although none of them was refused.
    others = [asyncio.create_task(service.verify_permissions(verify)) for _ in range(4)]
    outcomes = await asyncio.gather(first, *others)
    assert all(o.detail["verified"] for o in outcomes)
    after = [t for t in timeline.sent if t > timeline.limited[0]]
    assert len(after) == 5
    assert min(after) >= timeline.limited[0] + 2 - 0.05
    assert service.limiter.stats.rate_limited == 1
    assert service.limiter.stats.paused_seconds >= 1.9


async def test_a_long_pause_hands_the_message_back(
    timed_service: tuple[TelegramBotService, Timeline], control: SandboxControl
) -> None:
    service, timeline = timed_service
    await control.inject_fault(
        "getChatMember", 429, "Too Many Requests: retry after 30", retry_after=30
    )
    verify = VerifyPermissions(channel_id=PREMIUM)
    with pytest.raises(TelegramRetryableError) as caught:
        await service.verify_permissions(verify)
    assert caught.value.retry_after == 30
    sent = len(timeline.sent)
    # Another handler does not wait 30 s, nor call Telegram: it hands its message back too.
    with pytest.raises(RetryableError) as again:
        await service.verify_permissions(verify)
    assert again.value.retry_after is not None and 25 < again.value.retry_after <= 30
    assert len(timeline.sent) == sent
    assert service.limiter.stats.handed_back == 2


async def test_300_operations_under_a_30_per_second_limit(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    # Known users who never joined: each removal is one getChatMember answering "left".
    for n in range(300):
        await control.add_user({"id": 5000 + n, "first_name": f"U{n}"})
    await control.set_flood(30)
    ops = [
        RemoveUser(user_id=5000 + n, channel_id=PREMIUM, subscription_id=f"f{n}", reason="expiry")
        for n in range(300)
    ]
    limiter = FloodLimiter(RateLimits(overall=30, per_channel=30))
    service = TelegramBotService(sandbox.token, api_url=sandbox.url, limiter=limiter)
    await service.start()
    async with SqliteTransport(db_url) as transport:
        await BotQueueProducer(transport).enqueue_many(ops)
        consumer = BotQueueConsumer(
            service, transport, drain=True, wait_time_seconds=1, log_operations=False
        )
        await consumer.run()
        stats = await transport.stats()
    await service.aclose()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 0)
    counts = await control.requests()
    assert counts["methods"]["getChatMember"] >= 300
    assert counts["rate_limited"] <= 0.01 * counts["total"]


async def test_sliding_window_never_exceeds_its_rate() -> None:
    clock = FakeClock()  # virtual time: every wait of the window and the calls is the clock's
    window = Budget(None, 5, clock=clock)
    calls: list[tuple[float, float]] = []

    async def call(duration: float) -> None:
        async with window.slot():
            started = clock.now()
            await clock.sleep(duration)
            calls.append((started, clock.now()))

    await asyncio.gather(*(call(0.001 * (n % 7)) for n in range(12)))
    # Wherever inside (start, end) a server checked each call, no one-second window holds more
    # than five: each slot's next call starts at least a period after the previous one ended.
    ends = sorted(end for _, end in calls)
    starts = sorted(start for start, _ in calls)
    for i, start in enumerate(starts):
        assert sum(1 for s in starts if start <= s < start + 1.0) <= 5
        if i >= 5:
            assert start >= ends[i - 5] + 1.0


async def test_sliding_window_spaces_its_grants() -> None:
    """A burst of waiting callers is let through one spacing apart, not all at once."""
    clock = FakeClock()
    window = Budget(None, 20, clock=clock)
    granted: list[float] = []

    async def call() -> None:
        async with window.slot():
            granted.append(clock.now())

    await asyncio.gather(*(call() for _ in range(10)))
    gaps = [b - a for a, b in itertools.pairwise(granted)]
    assert min(gaps) >= window.period / window.limit - 0.002


async def test_rate_limits_reported_in_counts(
    sandbox: SandboxServer, control: SandboxControl
) -> None:
    """A strict sandbox window sees no 429 from a burst of 60 concurrent calls at 30/s."""
    await control.set_flood(30)
    limiter = FloodLimiter(RateLimits(overall=30, per_channel=30))
    service = TelegramBotService(sandbox.token, api_url=sandbox.url, limiter=limiter)
    await service.start()
    ops = [VerifyPermissions(channel_id=PREMIUM, listing_id=f"l{n}") for n in range(60)]
    outcomes = await asyncio.gather(*(service.verify_permissions(op) for op in ops))
    await service.aclose()
    assert all(o.detail["verified"] for o in outcomes)
    assert (await control.requests())["rate_limited"] == 0
    assert limiter.stats.rate_limited == 0
