"""What telegram-outage found: an invite whose link could not be revoked because Telegram
was down left it valid beside the link of its next attempt (4 extra valid links in a reduced
run). The invite-link ledger (botqueue/telegram/links.py) now has the next attempt revoke it
first. The real service over HTTP against the sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from botqueue.errors import RetryableError
from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.limiter import FloodLimiter, RateLimits
from botqueue.telegram.service import TelegramBotService
from tests.factories import invite


@pytest.fixture
async def world() -> AsyncIterator[tuple[SandboxServer, SandboxControl, TelegramBotService]]:
    async with SandboxServer() as sandbox, SandboxControl(sandbox.url) as control:
        limits = RateLimits(overall=1000, per_user_chat=1000, per_channel=1000)
        service = TelegramBotService(
            sandbox.token, api_url=sandbox.url, request_timeout=2.0, limiter=FloodLimiter(limits)
        )
        await service.start()
        try:
            yield sandbox, control, service
        finally:
            await service.aclose()


def valid_links(sandbox: SandboxServer) -> list[str]:
    return [
        u for u, link in sandbox.state.links.items() if link.name == "sub-1" and not link.is_revoked
    ]


async def first_attempt_leaves_a_valid_link(
    control: SandboxControl, service: TelegramBotService
) -> str:
    # Telegram goes down between the link and the message: neither is revocable nor sent.
    await control.inject_fault("sendMessage", 502, "Bad Gateway")
    await control.inject_fault("revokeChatInviteLink", 502, "Bad Gateway")
    with pytest.raises(RetryableError) as caught:
        await service.invite_user(invite())
    assert caught.value.detail["linkValid"] is True
    return str(caught.value.detail["inviteLink"])


async def test_the_next_attempt_revokes_the_left_over_link_first(
    world: tuple[SandboxServer, SandboxControl, TelegramBotService],
) -> None:
    sandbox, control, service = world
    first = await first_attempt_leaves_a_valid_link(control, service)
    outcome = await service.invite_user(invite())
    assert outcome.status == "succeeded"
    assert valid_links(sandbox) == [outcome.detail["inviteLink"]] != [first]
    assert sandbox.state.links[first].is_revoked


async def test_no_new_link_while_the_left_over_one_cannot_be_revoked(
    world: tuple[SandboxServer, SandboxControl, TelegramBotService],
) -> None:
    sandbox, control, service = world
    first = await first_attempt_leaves_a_valid_link(control, service)
    await control.inject_fault("revokeChatInviteLink", 502, "Bad Gateway")
    with pytest.raises(RetryableError):
        await service.invite_user(invite())
    assert valid_links(sandbox) == [first]  # still one: no second link was made
    outcome = await service.invite_user(invite())
    assert valid_links(sandbox) == [outcome.detail["inviteLink"]]


async def test_a_left_over_link_that_cannot_ever_be_revoked_does_not_block_the_invite(
    world: tuple[SandboxServer, SandboxControl, TelegramBotService],
) -> None:
    sandbox, control, service = world
    first = await first_attempt_leaves_a_valid_link(control, service)
    await control.inject_fault("revokeChatInviteLink", 400, "Bad Request: CHAT_ADMIN_REQUIRED")
    outcome = await service.invite_user(invite())
    assert outcome.status == "succeeded"  # as before the fix: the subscriber gets a link
    assert sorted(valid_links(sandbox)) == sorted([first, outcome.detail["inviteLink"]])
