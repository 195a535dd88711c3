"""Fixtures for the Bot API sandbox (a started server with the default world, and its control)
and, registered here once for every test module, the real SQS servers'."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService
from tests.integration.sqs_servers import (  # noqa: F401 (fixtures, used by name)
    localstack_server_fixture,
    moto_server_fixture,
    sqs_fixture,
    sqs_server_fixture,
)


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    """A sandbox on a free loopback port, with the default world."""
    async with SandboxServer() as server:
        yield server


@pytest.fixture
async def control(sandbox: SandboxServer) -> AsyncIterator[SandboxControl]:
    """A control-API client for the ``sandbox`` fixture."""
    async with SandboxControl(sandbox.url) as client:
        yield client


@pytest.fixture
async def service(sandbox: SandboxServer) -> AsyncIterator[TelegramBotService]:
    """A started Telegram service against the ``sandbox``, with its own limiter."""
    # Its own generous limiter: flood control has tests of its own.
    limiter = FloodLimiter(RateLimits(overall=1000, per_channel=1000, per_user_chat=100))
    svc = TelegramBotService(
        sandbox.token, api_url=sandbox.url, request_timeout=2.0, limiter=limiter
    )
    await svc.start()
    yield svc
    await svc.aclose()
