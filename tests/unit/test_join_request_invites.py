"""Join-request invites (issue 19, item 2): ``inviteMode`` on the wire, in the producers and
the settings, and the invite's decisions through the real client over a mocked transport
(tests/mocked_bot.py). tests/integration/test_join_request_sandbox.py shows the same over HTTP."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from botqueue import BotQueueProducer, OperationValidationError, SyncBotQueueProducer
from botqueue.cli.queue import INVITE_MODES as CLI_INVITE_MODES
from botqueue.config import load_settings
from botqueue.errors import DecodeError, RetryableError
from botqueue.operations import INVITE_MODES, build_operation, decode_operation
from botqueue.sandbox import errors as tg
from botqueue.telegram.errors import TelegramPermanentError
from botqueue.telegram.service import TelegramBotService
from botqueue.telegram.settings import service_config
from botqueue.transports import SqliteTransport
from tests.factories import body, invite
from tests.mocked_bot import MockedBot, chat_member, invite_link, message

CHANNEL = -1001000000001
USER = 1004
TOKEN = "123456789:AAE-secret-token-value"


def op(mode: str | None = "join_request") -> Any:
    """USER invited into CHANNEL, in ``mode`` (None: the worker's default)."""
    return invite(USER, "sub-1", channel=str(CHANNEL), invite_mode=mode)


# -- the wire -------------------------------------------------------------------------------


def test_an_invite_without_the_field_is_the_specs_message_unchanged() -> None:
    plain = invite()
    assert plain.invite_mode is None
    assert "inviteMode" not in json.loads(plain.to_json())
    assert decode_operation(body(invite())).invite_mode is None  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ["link", "join_request"])
def test_invite_mode_round_trips(mode: str) -> None:
    sent = invite(invite_mode=mode)
    assert json.loads(sent.to_json())["inviteMode"] == mode
    assert decode_operation(sent.to_json()) == sent


def test_the_mode_is_not_part_of_the_identity() -> None:
    # The same subscription's invite, whichever way it is delivered: one request.
    ids = {invite(invite_mode=mode).deduplication_id() for mode in (None, *INVITE_MODES)}
    assert len(ids) == 1


def test_an_invalid_mode_is_refused_naming_the_field() -> None:
    with pytest.raises(OperationValidationError) as caught:
        build_operation({**json.loads(invite().to_json()), "inviteMode": "approve"})
    assert "inviteMode" in caught.value.errors
    with pytest.raises(DecodeError) as decoded:
        decode_operation(body(invite(), inviteMode="approve"))
    assert "inviteMode" in str(decoded.value)


async def test_the_producer_sends_the_mode_and_refuses_a_bad_one(
    sqlite_transport: SqliteTransport,
) -> None:
    producer = BotQueueProducer(sqlite_transport)
    await producer.enqueue_invite_user(5, "@somechan", "s-1", "o-1", invite_mode="join_request")
    await producer.enqueue_invite_user(6, "@somechan", "s-2", "o-2")
    with pytest.raises(OperationValidationError) as caught:
        await producer.enqueue_invite_user(7, "@somechan", "s-3", "o-3", invite_mode="bogus")
    assert list(caught.value.errors) == ["inviteMode"]
    received = await sqlite_transport.receive(10, wait_seconds=0)
    modes = {json.loads(m.body)["userId"]: json.loads(m.body).get("inviteMode") for m in received}
    assert modes == {5: "join_request", 6: None}


def test_the_sync_producer_passes_the_mode_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    with SyncBotQueueProducer(url) as producer:
        producer.enqueue_invite_user(5, "@somechan", "s-1", "o-1", invite_mode="join_request")
        with pytest.raises(OperationValidationError, match="inviteMode"):
            producer.enqueue_invite_user(5, "@somechan", "s-1", "o-1", invite_mode="x")


def test_the_cli_offers_the_same_modes() -> None:
    assert CLI_INVITE_MODES == INVITE_MODES


# -- the worker's default -------------------------------------------------------------------


def test_the_default_mode_is_link_and_telegram_invite_mode_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TELEGRAM_INVITE_MODE", raising=False)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    assert load_settings().telegram_invite_mode == "link"
    assert TelegramBotService(TOKEN).invite_mode == "link"
    monkeypatch.setenv("TELEGRAM_INVITE_MODE", "join_request")
    assert service_config().invite_mode == "join_request"


# -- decisions through the mocked bot -------------------------------------------------------


def created(bot: MockedBot) -> str:
    """Answer getChatMember (not in) and createChatInviteLink; return the link."""
    bot.answer("getChatMember", chat_member(USER, "left"))
    link = invite_link() | {"creates_join_request": True}
    link.pop("member_limit", None)
    bot.answer("createChatInviteLink", link)
    return str(link["invite_link"])


async def test_a_join_request_link_has_no_member_limit(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    url = created(mocked_bot)
    mocked_bot.answer("sendMessage", message(USER))
    outcome = await mocked_service.invite_user(op())
    (params,) = mocked_bot.calls("createChatInviteLink")
    assert params.get("creates_join_request") in (True, "true", "True")
    assert "member_limit" not in params
    assert params["name"] == "sub-1" and "expire_date" in params
    assert outcome.status == "succeeded"
    assert (outcome.detail["inviteLink"], outcome.detail["delivered"]) == (url, True)
    assert outcome.detail["inviteMode"] == "join_request"


async def test_the_services_default_mode_applies_when_the_invite_names_none(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    mocked_service.invite_mode = "join_request"
    created(mocked_bot)
    mocked_bot.answer("sendMessage", message(USER))
    await mocked_service.invite_user(op(None))
    (params,) = mocked_bot.calls("createChatInviteLink")
    assert "member_limit" not in params


async def test_the_invites_link_mode_overrides_the_default(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    mocked_service.invite_mode = "join_request"
    mocked_bot.answer("getChatMember", chat_member(USER, "left"))
    mocked_bot.answer("createChatInviteLink", invite_link())
    mocked_bot.answer("sendMessage", message(USER))
    outcome = await mocked_service.invite_user(op("link"))
    (params,) = mocked_bot.calls("createChatInviteLink")
    assert int(params["member_limit"]) == 1 and "creates_join_request" not in params
    assert "delivered" not in outcome.detail  # link mode: as before


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(tg.BOT_NOT_STARTED, "bot_not_started", id="not-started"),
        pytest.param(tg.BOT_BLOCKED, "bot_blocked", id="blocked"),
        pytest.param(tg.USER_DEACTIVATED, "user_deactivated", id="deactivated"),
    ],
)
async def test_an_undeliverable_message_is_no_failure_in_join_request_mode(
    mocked_service: TelegramBotService, mocked_bot: MockedBot, text: str, reason: str
) -> None:
    url = created(mocked_bot)
    mocked_bot.fail("sendMessage", text)
    outcome = await mocked_service.invite_user(op())
    assert outcome.status == "succeeded"
    assert outcome.detail["delivered"] is False
    assert outcome.detail["inviteLink"] == url
    assert outcome.detail["deliveryReason"] == reason
    # The link stays valid (it admits nobody by itself): no revocation.
    assert mocked_bot.methods() == ["getChatMember", "createChatInviteLink", "sendMessage"]
    assert await mocked_service.links.held(str(CHANNEL), USER) == [url]


async def test_an_unconfirmed_message_still_fails_and_carries_the_link(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    url = created(mocked_bot)
    mocked_bot.fail("sendMessage", "Bad Gateway")
    mocked_bot.answer("revokeChatInviteLink", invite_link(revoked=True))
    with pytest.raises(RetryableError) as caught:
        await mocked_service.invite_user(op())
    assert caught.value.detail["inviteLink"] == url
    assert caught.value.detail["inviteMode"] == "join_request"


async def test_link_mode_undeliverable_is_still_a_failure(
    mocked_service: TelegramBotService, mocked_bot: MockedBot
) -> None:
    mocked_bot.answer("getChatMember", chat_member(USER, "left"))
    mocked_bot.answer("createChatInviteLink", invite_link())
    mocked_bot.fail("sendMessage", tg.BOT_NOT_STARTED)
    with pytest.raises(TelegramPermanentError):
        await mocked_service.invite_user(op("link"))
