"""The one mapping from Telegram's answers to botqueue errors, table-driven."""

from __future__ import annotations

import datetime as dtm
import pickle

import httpx
import pytest
from telegram import error as tg

from botqueue.errors import FatalError, PermanentError, RetryableError
from botqueue.telegram.errors import (
    PERMANENT_REASONS,
    BotUnauthorizedError,
    ChatMigratedError,
    TelegramPermanentError,
    TelegramRetryableError,
    map_telegram_error,
    redact,
)
from botqueue.telegram.request import ErrorAnswer

TOKEN = "123456789:AAF-secret-token-value-0123456789abcdef"

# (exception python-telegram-bot raises for the answer, our class, our reason code)
TABLE: list[tuple[BaseException, type[BaseException], str]] = [
    (tg.BadRequest("Bad Request: chat not found"), TelegramPermanentError, "chat_not_found"),
    (tg.BadRequest("Bad Request: user not found"), TelegramPermanentError, "user_not_found"),
    (tg.BadRequest("Bad Request: member not found"), TelegramPermanentError, "member_not_found"),
    (
        tg.BadRequest("Bad Request: PARTICIPANT_ID_INVALID"),
        TelegramPermanentError,
        "participant_id_invalid",
    ),
    (tg.BadRequest("Bad Request: USER_ID_INVALID"), TelegramPermanentError, "user_id_invalid"),
    (
        tg.BadRequest("Bad Request: invalid user_id specified"),
        TelegramPermanentError,
        "user_id_invalid",
    ),
    (tg.BadRequest("Bad Request: PEER_ID_INVALID"), TelegramPermanentError, "peer_id_invalid"),
    (
        tg.BadRequest("Bad Request: USER_BANNED_IN_CHANNEL"),
        TelegramPermanentError,
        "user_banned_in_channel",
    ),
    (tg.BadRequest("Bad Request: CHANNEL_PRIVATE"), TelegramPermanentError, "channel_private"),
    (
        tg.BadRequest("Bad Request: group is deactivated"),
        TelegramPermanentError,
        "group_deactivated",
    ),
    (
        tg.Forbidden("Forbidden: the group chat was deleted"),
        TelegramPermanentError,
        "group_deleted",
    ),
    (
        tg.BadRequest("Bad Request: INVITE_HASH_EXPIRED"),
        TelegramPermanentError,
        "invite_link_expired",
    ),
    (
        tg.Forbidden("Forbidden: bot can't send messages to bots"),
        TelegramPermanentError,
        "recipient_is_bot",
    ),
    (
        tg.Forbidden("Forbidden: bots can't send messages to bots"),
        TelegramPermanentError,
        "recipient_is_bot",
    ),
    (
        tg.Forbidden("Forbidden: the bot can't send messages to the bot"),
        TelegramPermanentError,
        "recipient_is_bot",
    ),
    (
        tg.BadRequest("Bad Request: group chat was deactivated"),
        TelegramPermanentError,
        "group_deactivated",
    ),
    (
        tg.BadRequest("Bad Request: not enough rights to restrict/unrestrict chat member"),
        TelegramPermanentError,
        "not_enough_rights",
    ),
    (
        tg.BadRequest("Bad Request: not enough rights to manage chat invite link"),
        TelegramPermanentError,
        "not_enough_rights",
    ),
    (
        tg.BadRequest("Bad Request: CHAT_ADMIN_REQUIRED"),
        TelegramPermanentError,
        "not_enough_rights",
    ),
    (
        tg.BadRequest("Bad Request: have no rights to send a message"),
        TelegramPermanentError,
        "not_enough_rights",
    ),
    (
        tg.BadRequest("Bad Request: need administrator rights in the channel chat"),
        TelegramPermanentError,
        "not_enough_rights",
    ),
    (
        tg.BadRequest("Bad Request: user is an administrator of the chat"),
        TelegramPermanentError,
        "user_is_admin",
    ),
    (tg.BadRequest("Bad Request: USER_ADMIN_INVALID"), TelegramPermanentError, "user_is_admin"),
    (
        tg.BadRequest("Bad Request: can't remove chat owner"),
        TelegramPermanentError,
        "user_is_owner",
    ),
    (
        tg.BadRequest("Bad Request: member list is inaccessible"),
        TelegramPermanentError,
        "member_list_inaccessible",
    ),
    (tg.BadRequest("Bad Request: message text is empty"), TelegramPermanentError, "bad_request"),
    (tg.Forbidden("Forbidden: bot was blocked by the user"), TelegramPermanentError, "bot_blocked"),
    (
        tg.Forbidden("Forbidden: bot can't initiate conversation with a user"),
        TelegramPermanentError,
        "bot_not_started",
    ),
    (tg.Forbidden("Forbidden: user is deactivated"), TelegramPermanentError, "user_deactivated"),
    (
        tg.Forbidden("Forbidden: bot was kicked from the channel chat"),
        TelegramPermanentError,
        "bot_kicked",
    ),
    (
        tg.Forbidden("Forbidden: bot is not a member of the channel chat"),
        TelegramPermanentError,
        "bot_not_member",
    ),
    (
        tg.Forbidden("Forbidden: bot is not a member of the supergroup chat"),
        TelegramPermanentError,
        "bot_not_member",
    ),
    (tg.Forbidden("Forbidden: something new"), TelegramPermanentError, "forbidden"),
    (tg.RetryAfter(7), TelegramRetryableError, "flood"),
    (tg.TimedOut(), TelegramRetryableError, "timeout"),
    (tg.NetworkError("Internal Server Error"), TelegramRetryableError, "server_or_network"),
    (tg.NetworkError("Bad Gateway"), TelegramRetryableError, "server_or_network"),
    (
        tg.Conflict("Conflict: terminated by other getUpdates request"),
        TelegramRetryableError,
        "telegram_error",
    ),
    (httpx.ConnectError("connection refused"), TelegramRetryableError, "unexpected"),
]


@pytest.mark.parametrize(("raised", "expected", "reason"), TABLE, ids=lambda v: str(v)[:50])
def test_mapping(raised: BaseException, expected: type[BaseException], reason: str) -> None:
    mapped = map_telegram_error(raised, token=TOKEN)
    assert type(mapped) is expected
    assert getattr(mapped, "reason", None) == reason
    assert mapped.detail["reason"] == reason
    assert mapped.retryable is isinstance(mapped, RetryableError)
    assert pickle.loads(pickle.dumps(mapped)).detail == mapped.detail


def test_every_known_description_is_in_the_table() -> None:
    covered = " ".join(str(raised).lower() for raised, _, _ in TABLE)
    for fragment, _ in PERMANENT_REASONS:
        assert fragment in covered, fragment


def test_a_400_is_never_a_retryable_network_error() -> None:
    # python-telegram-bot's BadRequest subclasses NetworkError.
    assert issubclass(tg.BadRequest, tg.NetworkError)
    mapped = map_telegram_error(tg.BadRequest("Bad Request: something odd"))
    assert isinstance(mapped, PermanentError) and not isinstance(mapped, RetryableError)
    assert str(mapped) == "Bad Request: something odd"


def test_telegrams_description_is_kept_verbatim_when_the_request_recorded_it() -> None:
    # python-telegram-bot turns "Bad Request: PARTICIPANT_ID_INVALID" into
    # "Participant_id_invalid"; the recorded answer puts Telegram's own text back.
    raised = tg.BadRequest("Bad Request: PARTICIPANT_ID_INVALID")
    assert str(raised) == "Participant_id_invalid"
    answer = ErrorAnswer(400, "Bad Request: PARTICIPANT_ID_INVALID")
    mapped = map_telegram_error(raised, answer=answer)
    assert str(mapped) == "Bad Request: PARTICIPANT_ID_INVALID"
    assert mapped.detail["reason"] == "participant_id_invalid"
    forbidden = tg.Forbidden("Forbidden: bot was blocked by the user")
    answer = ErrorAnswer(403, f"Forbidden: bot was blocked by the user {TOKEN}")
    assert str(map_telegram_error(forbidden, token=TOKEN, answer=answer)) == (
        "Forbidden: bot was blocked by the user <token>"
    )


def test_retry_after_is_carried_in_seconds() -> None:
    assert map_telegram_error(tg.RetryAfter(12)).retry_after == 12  # type: ignore[attr-defined]
    mapped = map_telegram_error(tg.RetryAfter(dtm.timedelta(seconds=3)))
    assert isinstance(mapped, RetryableError) and mapped.retry_after == 3


def test_migration_and_invalid_token() -> None:
    migrated = map_telegram_error(tg.ChatMigrated(-1009876))
    assert isinstance(migrated, ChatMigratedError) and migrated.new_chat_id == -1009876
    unauthorized = map_telegram_error(tg.InvalidToken("Unauthorized"))
    assert isinstance(unauthorized, BotUnauthorizedError) and isinstance(unauthorized, FatalError)
    assert not isinstance(unauthorized, PermanentError | RetryableError)


def test_the_token_never_survives_in_error_text() -> None:
    leaky = tg.NetworkError(f"httpx.ConnectError: https://api.telegram.org/bot{TOKEN}/getMe")
    mapped = map_telegram_error(leaky, token=TOKEN)
    assert TOKEN not in str(mapped)
    assert TOKEN.partition(":")[2] not in str(mapped)
    assert redact(f"x{TOKEN}y", TOKEN) == "x<token>y"
