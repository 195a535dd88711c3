"""Join-request invites (issue 19, item 2) over real HTTP against the Bot API sandbox: the
link makes a join request instead of admitting its user, and an undeliverable message is no
failure. tests/unit/test_join_request_invites.py has the decision tables."""

from __future__ import annotations

import pytest
from telegram.error import BadRequest

from botqueue.sandbox import SandboxControl
from botqueue.telegram.service import TelegramBotService
from tests.factories import PREMIUM, invite


async def test_a_join_request_link_makes_a_request_and_admits_nobody(
    service: TelegramBotService, control: SandboxControl
) -> None:
    outcome = await service.invite_user(invite(1004, invite_mode="join_request"))
    assert outcome.status == "succeeded"
    assert (outcome.detail["delivered"], outcome.detail["inviteMode"]) == (True, "join_request")
    link = outcome.detail["inviteLink"]
    (sent,) = await control.messages(chat_id=1004)
    assert link in sent["text"]
    assert await control.join(1004, link) == "pending"
    assert 1004 not in (await control.members(PREMIUM))["members"]


async def test_the_worker_default_mode_applies_to_a_spec_message(
    service: TelegramBotService, control: SandboxControl
) -> None:
    service.invite_mode = "join_request"
    outcome = await service.invite_user(invite(1004))  # no inviteMode on the wire
    assert await control.join(1004, outcome.detail["inviteLink"]) == "pending"


async def test_a_user_who_never_started_the_bot_still_gets_a_valid_link(
    service: TelegramBotService, control: SandboxControl
) -> None:
    outcome = await service.invite_user(invite(1005, invite_mode="join_request"))
    assert outcome.status == "succeeded"
    assert outcome.detail["delivered"] is False
    assert outcome.detail["deliveryReason"] == "bot_not_started"
    assert await control.messages(chat_id=1005) == []
    # Shown on the application's own page, the link still works: it makes a request.
    assert await control.join(1005, outcome.detail["inviteLink"]) == "pending"


async def test_telegram_refuses_a_member_limit_on_a_join_request_link(
    service: TelegramBotService,
) -> None:
    with pytest.raises(BadRequest) as caught:
        await service.bot.create_chat_invite_link(
            PREMIUM, member_limit=1, creates_join_request=True
        )
    assert "member limit can't be specified for links requiring administrator approval" in (
        caught.value.message.lower()
    )
    link = await service.bot.create_chat_invite_link(PREMIUM, creates_join_request=True)
    assert link.creates_join_request is True and link.member_limit is None
