"""Injected latency split into a request leg (before flood control) and an answer leg, with
jitter: what a distant Bot API server looks like to a client."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from botqueue.sandbox import SandboxControl, SandboxControlError, SandboxServer
from botqueue.sandbox.faults import Latency


@pytest.fixture
async def client(sandbox: SandboxServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{sandbox.api_base}{sandbox.token}/") as session:
        yield session


async def timed(client: httpx.AsyncClient, method: str) -> tuple[int, float]:
    started = time.monotonic()
    response = await client.post(method)
    return response.status_code, time.monotonic() - started


def test_legs_split_and_jitter_each_on_its_own() -> None:
    assert Latency(0.3).legs(random.Random(1)) == (0.0, 0.3)  # as before: all before the answer
    rng = random.Random(7)
    legs = [Latency(0.1, jitter=0.2, request_share=0.25).legs(rng) for _ in range(2000)]
    requests, answers = zip(*legs, strict=True)
    assert 0.02 <= min(requests) < 0.0205 and 0.0295 < max(requests) <= 0.03
    assert 0.06 <= min(answers) < 0.0615 and 0.0885 < max(answers) <= 0.09
    # Independent legs: a long request leg says nothing about the answer's.
    assert len({(r > 0.025, a > 0.075) for r, a in legs}) == 4


@pytest.mark.parametrize(
    "body",
    [
        {"seconds": 0.1, "jitter": 1.5},
        {"seconds": 0.1, "request_share": -0.1},
        {"seconds": 0.1, "jitter": "0.2"},
        {"jitter": 0.2},
    ],
)
async def test_invalid_latency_is_refused(sandbox: SandboxServer, body: dict[str, object]) -> None:
    async with httpx.AsyncClient() as session:
        response = await session.post(f"{sandbox.url}/_sandbox/latency", json=body)
    assert response.status_code == 400
    assert response.json()["ok"] is False


async def test_the_client_refuses_what_the_server_refuses(control: SandboxControl) -> None:
    with pytest.raises(SandboxControlError, match="jitter must be between 0 and 1"):
        await control.set_latency("*", 0.1, jitter=2.0)


async def test_the_request_leg_comes_before_flood_control(
    client: httpx.AsyncClient, control: SandboxControl
) -> None:
    """Flood control sees a call when its request leg is over, not when the client sent it."""
    await control.set_flood(1)
    for share, expected in ((0.0, 200), (1.0, 429)):
        await control.set_latency("getChat", 0.4, request_share=share)
        sent = time.monotonic()
        status, _ = await timed(client, "getChat")
        assert status == 400  # no chat_id: answered by the method, past flood control
        # 1.05 s after getChat was sent: after its check if that came first (answer leg),
        # within its second if the check came 0.4 s after the send (request leg).
        await asyncio.sleep(sent + 1.05 - time.monotonic())
        assert (await timed(client, "getMe"))[0] == expected
        await asyncio.sleep(1.5)  # an empty flood window for the next round


async def test_a_call_is_counted_once_its_request_leg_is_over(
    client: httpx.AsyncClient, control: SandboxControl
) -> None:
    await control.set_latency("getMe", 0.5, request_share=1.0)
    before = (await control.requests())["total"]
    call = asyncio.create_task(timed(client, "getMe"))
    await asyncio.sleep(0.2)
    assert (await control.requests())["total"] == before
    status, seconds = await call
    assert status == 200 and seconds >= 0.5
    assert (await control.requests())["total"] == before + 1


async def test_jittered_split_latency(client: httpx.AsyncClient, control: SandboxControl) -> None:
    await control.set_latency("getMe", 0.2, jitter=0.5, request_share=0.5)
    durations = [(await timed(client, "getMe"))[1] for _ in range(8)]
    # Each leg is 50-150 ms; lower bounds only, as a slow machine only adds time.
    assert min(durations) >= 0.1
    assert max(durations) - min(durations) > 0.005
    await control.set_latency("getMe", 0)
    assert (await timed(client, "getMe"))[1] < 0.1
