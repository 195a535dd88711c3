"""Bot-wide conditions get bot-wide reactions (issue 10): an outage or a long flood pause
pauses the bot, spends no operation's retries and dead-letters nothing; a failure of one
method only is still the operation's own. The consumer, the embedded queue and the Telegram
service over real HTTP against the sandbox."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from botqueue import BotQueueConsumer, BotQueueProducer
from botqueue.observability.outcomes import OutcomeEvent, OutcomeHooks
from botqueue.operations import AnyOperation, InviteUser, VerifyPermissions
from botqueue.retry import Backoff
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.breaker import BreakerSettings
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService
from botqueue.transports import SqliteTransport

CHANNELS = ["-1001000000001", "-1001000000002", "-1001000000003", "-1001000000004"]
OUTAGE_SECONDS = 20.0


def service_for(url: str, token: str, *, max_hold: float = 5.0) -> TelegramBotService:
    limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000, max_hold=max_hold))
    return TelegramBotService(
        token,
        api_url=url,
        request_timeout=2.0,
        limiter=limiter,
        breaker=BreakerSettings(probe_max=2.0),  # recovery seen within 2 s of its start
    )


@pytest.fixture
async def started(sandbox: SandboxServer) -> AsyncIterator[TelegramBotService]:
    svc = service_for(sandbox.url, sandbox.token)
    await svc.start()
    yield svc
    await svc.aclose()


def verifications(count: int, max_retries: int = 1) -> list[AnyOperation]:
    return [
        VerifyPermissions(
            channel_id=CHANNELS[n % len(CHANNELS)], listing_id=f"l{n}", max_retries=max_retries
        )
        for n in range(count)
    ]


def consumer_for(
    service: TelegramBotService, transport: SqliteTransport, events: list[OutcomeEvent]
) -> BotQueueConsumer:
    return BotQueueConsumer(
        service,
        transport,
        drain=True,
        wait_time_seconds=0.5,
        visibility_timeout=3.0,  # so that a pause outlasts it: only extension keeps them held
        backoff=Backoff(base=0.2),
        hooks=[OutcomeHooks([events.append])],
        log_operations=False,
    )


async def run_through(
    transport: SqliteTransport,
    service: TelegramBotService,
    ops: Sequence[AnyOperation],
    during: float,
    outage_starts: object,
    outage_ends: object,
) -> list[OutcomeEvent]:
    await BotQueueProducer(transport).enqueue_many(ops)
    events: list[OutcomeEvent] = []
    await outage_starts()  # type: ignore[operator]
    consumer = consumer_for(service, transport, events)
    run = asyncio.create_task(consumer.run())
    await asyncio.sleep(during)
    assert not run.done(), "the consumer finished during the outage"
    assert service.bot_state.unavailable() is not None
    await outage_ends()  # type: ignore[operator]
    await asyncio.wait_for(run, 60)
    return events


def assert_all_done_first_time(events: list[OutcomeEvent], count: int) -> None:
    assert len(events) == count
    assert {event.status for event in events} == {"succeeded"}, [e.status for e in events]
    # The outage cost no attempt and no receive: every operation finished on its first.
    assert {event.attempts for event in events} == {1}


@pytest.mark.slow  # a breaker's open and half-open periods in real time: ~20 s
async def test_an_outage_of_every_method_dead_letters_nothing(
    sqlite_transport: SqliteTransport, started: TelegramBotService, control: SandboxControl
) -> None:
    ops = verifications(20)

    async def down() -> None:
        await control.inject_fault("*", 502, "Bad Gateway", count=100_000)

    events = await run_through(
        sqlite_transport, started, ops, OUTAGE_SECONDS, down, control.clear_faults
    )
    assert_all_done_first_time(events, len(ops))
    stats = await sqlite_transport.stats()
    assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 0, 0)
    assert started.breaker.openings >= 1


@pytest.mark.slow  # a breaker's open and half-open periods in real time: ~20 s
async def test_a_stopped_and_restarted_server_dead_letters_nothing(
    sqlite_transport: SqliteTransport,
) -> None:
    first = SandboxServer()
    await first.start()
    port, token = first.port, first.token
    svc = service_for(first.url, token)
    await svc.start()
    holder: list[SandboxServer] = [first]

    async def up_again() -> None:
        again = SandboxServer(port=port)
        await again.start()
        holder.append(again)

    try:
        events = await run_through(
            sqlite_transport, svc, verifications(12), OUTAGE_SECONDS, first.aclose, up_again
        )
    finally:
        await svc.aclose()
        await holder[-1].aclose()
    assert_all_done_first_time(events, 12)
    assert (await sqlite_transport.stats()).dead_letters == 0


async def test_a_long_429_repeated_beyond_max_retries_still_completes(
    sqlite_transport: SqliteTransport, sandbox: SandboxServer, control: SandboxControl
) -> None:
    svc = service_for(sandbox.url, sandbox.token, max_hold=0.2)
    await svc.start()
    try:
        op = VerifyPermissions(channel_id=CHANNELS[0], max_retries=1)
        # Three pauses far above the hold, more than maxRetries allows attempts.
        await control.inject_fault("getChatMember", 429, retry_after=1, count=3)

        async def nothing() -> None:
            return None

        events = await run_through(sqlite_transport, svc, [op], 0.5, nothing, nothing)
    finally:
        await svc.aclose()
    assert_all_done_first_time(events, 1)
    assert events[0].detail["verified"] is True
    assert svc.limiter.stats.rate_limited == 3


async def test_one_failing_method_is_the_operations_failure_not_an_outage(
    sqlite_transport: SqliteTransport, started: TelegramBotService, control: SandboxControl
) -> None:
    await control.inject_fault("sendMessage", 502, "Bad Gateway", count=100_000)
    op = InviteUser(
        user_id=1004, channel_id=CHANNELS[0], subscription_id="s", order_id="o", max_retries=1
    )
    await BotQueueProducer(sqlite_transport).enqueue(op)
    events: list[OutcomeEvent] = []
    await asyncio.wait_for(consumer_for(started, sqlite_transport, events).run(), 60)
    (event,) = events
    assert event.status == "dead_lettered" and event.attempts == 2  # its own retries
    assert started.breaker.openings == 0  # getMe answered: Telegram was up


async def test_a_worker_stopped_during_a_pause_hands_back_for_the_rest_of_it(
    sqlite_transport: SqliteTransport, sandbox: SandboxServer, control: SandboxControl
) -> None:
    svc = service_for(sandbox.url, sandbox.token, max_hold=0.2)
    await svc.start()
    try:
        await BotQueueProducer(sqlite_transport).enqueue(VerifyPermissions(channel_id=CHANNELS[0]))
        await control.inject_fault("getChatMember", 429, retry_after=30)
        events: list[OutcomeEvent] = []
        consumer = consumer_for(svc, sqlite_transport, events)
        consumer.drain = False
        await consumer.start()
        for _ in range(400):  # until the 429 has paused the bot
            if svc.limiter.remaining_pause() > 0:
                break
            await asyncio.sleep(0.05)
        began = time.monotonic()
        await consumer.stop()
        assert time.monotonic() - began < 5  # no grace period sat out
        stats = await sqlite_transport.stats()
        # Handed back, invisible for the rest of the pause, not dead-lettered.
        assert (stats.visible, stats.in_flight, stats.dead_letters) == (0, 1, 0)
        assert events == []
    finally:
        await svc.aclose()


async def test_an_outage_is_visible_not_ready_but_alive(
    sandbox: SandboxServer, control: SandboxControl, db_url: str
) -> None:
    from tests.integration.worker_process import WorkerProcess, sample, until

    env = {
        "BOT_OPERATIONS_QUEUE_URL": db_url,
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
        "TELEGRAM_REQUEST_TIMEOUT": "2",
        "TELEGRAM_BREAKER_MAX_PROBE_INTERVAL": "1",
        "BOTQUEUE_WAIT_TIME": "1",
    }
    async with WorkerProcess(env, "--metrics-port", "0") as worker:
        await worker.listening()

        async def ready() -> bool:
            return (await worker.get("/readyz"))[0] == 200

        await until(ready)
        await control.inject_fault("*", 502, "Bad Gateway", count=100_000)
        async with SqliteTransport(db_url) as transport:
            await BotQueueProducer(transport).enqueue_many(verifications(4))

        async def paused() -> bool:
            m = await worker.scrape()
            return sample(m, "botqueue_bot_paused", reason="telegram_unavailable") == 1

        await until(paused)
        status, body = await worker.get("/readyz")
        assert status == 503 and "Telegram unavailable" in body
        assert (await worker.get("/healthz"))[0] == 200  # alive: no restart for Telegram's sake
        await control.clear_faults()

        async def done() -> bool:
            m = await worker.scrape()
            return (
                sample(m, "botqueue_bot_available") == 1
                and sample(m, "botqueue_messages_deleted_total") == 4
            )

        await until(done)
        m = await worker.scrape()
        assert sample(m, "botqueue_bot_paused_seconds_total", reason="telegram_unavailable") > 0
        assert await ready()
        assert await worker.stop() == 0
    output = worker.output()
    assert output.count("Telegram unavailable: the bot is paused") == 1
    assert output.count("Telegram available again") == 1
    async with SqliteTransport(db_url) as transport:
        assert (await transport.stats()).dead_letters == 0
