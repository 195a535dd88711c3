"""The one place where Telegram's answers become botqueue errors.

Order matters and follows Telegram's own precedence: flood control (``retry_after``) and
migration (``migrate_to_chat_id``) first, then the status, then the description. In
python-telegram-bot ``BadRequest`` and ``TimedOut`` subclass ``NetworkError``, so a 400 is
classified before any network error and can never be retried as one.
"""

from __future__ import annotations

import datetime as dtm
import warnings
from typing import Any

from telegram import error as tg
from telegram.warnings import PTBDeprecationWarning

from ..errors import FatalError, OperationError, PermanentError, RetryableError
from .request import ErrorAnswer

# (substring of Telegram's description, lower case) -> our reason code. Descriptions are
# matched, not exact, because Telegram varies the chat kind ("channel chat", "supergroup chat").
# The first match wins, so a longer fragment stands before any shorter one it contains.
# docs/telegram.md lists each description with where Telegram was seen sending it.
PERMANENT_REASONS: tuple[tuple[str, str], ...] = (
    ("chat not found", "chat_not_found"),
    # The "user not found" family: Telegram also gives these for users who ARE in the chat,
    # so none of them means "not a member" (see the removal in service.py).
    ("user not found", "user_not_found"),
    ("member not found", "member_not_found"),
    ("participant_id_invalid", "participant_id_invalid"),
    ("user_id_invalid", "user_id_invalid"),
    ("invalid user_id specified", "user_id_invalid"),
    ("peer_id_invalid", "peer_id_invalid"),
    ("not enough rights", "not_enough_rights"),
    ("chat_admin_required", "not_enough_rights"),
    ("have no rights", "not_enough_rights"),
    ("need administrator rights", "not_enough_rights"),
    ("user is an administrator", "user_is_admin"),
    ("can't remove chat owner", "user_is_owner"),
    ("user_admin_invalid", "user_is_admin"),
    ("bot was blocked by the user", "bot_blocked"),
    ("bot can't initiate conversation", "bot_not_started"),
    # Telegram has worded this three ways: "bot can't send messages to bots" (until 2024),
    # "bots can't send messages to bots", "the bot can't send messages to the bot" (2026).
    ("can't send messages to bot", "recipient_is_bot"),
    ("can't send messages to the bot", "recipient_is_bot"),
    ("user_banned_in_channel", "user_banned_in_channel"),
    ("user is deactivated", "user_deactivated"),
    ("bot was kicked", "bot_kicked"),
    ("bot is not a member", "bot_not_member"),
    ("member list is inaccessible", "member_list_inaccessible"),
    ("channel_private", "channel_private"),
    ("group is deactivated", "group_deactivated"),
    ("group chat was deactivated", "group_deactivated"),
    ("group chat was deleted", "group_deleted"),
    # revokeChatInviteLink of a link the chat does not have (any more).
    ("invite_hash_expired", "invite_link_expired"),
)


class TelegramPermanentError(PermanentError):
    """Telegram refused the request for good; ``reason`` is a stable code."""

    def __init__(self, message: str, *, reason: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message, detail={"reason": reason, **(detail or {})})
        self.reason = reason


class TelegramRetryableError(RetryableError):
    """A transient Telegram failure: flood control, server error, network, timeout."""

    def __init__(self, message: str, *, reason: str, retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after, detail={"reason": reason})
        self.reason = reason


class BotUnauthorizedError(FatalError):
    """Telegram rejected the bot token (401/404): nothing can succeed until it is fixed."""


class ChatMigratedError(PermanentError):
    """The group became a supergroup; ``new_chat_id`` is where it lives now."""

    def __init__(self, new_chat_id: int) -> None:
        super().__init__(f"chat migrated to {new_chat_id}", detail={"reason": "chat_migrated"})
        self.new_chat_id = new_chat_id


def redact(text: str, token: str | None) -> str:
    """Remove the bot token (and its secret half) from a text."""
    if token:
        text = text.replace(token, "<token>")
        secret = token.partition(":")[2]
        if len(secret) >= 8:
            text = text.replace(secret, "<token>")
    return text


def _seconds(error: tg.RetryAfter) -> float:
    # python-telegram-bot 22 warns that retry_after will become a timedelta; accept both.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def reason_of(description: str) -> str | None:
    """The reason code for a Telegram error description, if it is one we know."""
    lowered = description.lower()
    for fragment, reason in PERMANENT_REASONS:
        if fragment in lowered:
            return reason
    return None


def _verbatim(error: tg.TelegramError, answer: ErrorAnswer | None, token: str | None) -> str:
    # Telegram's description as sent when the request recorded it; otherwise put back what
    # python-telegram-bot removed ("Bad Request: " and the case, as far as it can be guessed).
    if answer is not None and answer.description:
        return redact(answer.description, token)
    text = redact(str(error), token)
    if isinstance(error, tg.BadRequest) and not text.startswith("Bad Request: "):
        text = f"Bad Request: {text[:1].lower()}{text[1:]}"
    return text


def map_telegram_error(
    error: BaseException, *, token: str | None = None, answer: ErrorAnswer | None = None
) -> OperationError:
    """Turn an exception from python-telegram-bot into a botqueue error (returned, not raised).

    ``answer`` is what the request recorded of Telegram's answer (see request.py): with it,
    error texts carry Telegram's description verbatim.
    """
    text = redact(str(error), token)
    if isinstance(error, tg.RetryAfter):
        seconds = _seconds(error)
        return TelegramRetryableError(
            f"Too Many Requests: retry after {seconds:g}", reason="flood", retry_after=seconds
        )
    if isinstance(error, tg.ChatMigrated):
        return ChatMigratedError(error.new_chat_id)
    if isinstance(error, tg.InvalidToken):
        return BotUnauthorizedError(f"Telegram rejected the bot token: {text}")
    if isinstance(error, tg.BadRequest):  # before NetworkError: BadRequest subclasses it
        text = _verbatim(error, answer, token)
        return TelegramPermanentError(text, reason=reason_of(text) or "bad_request")
    if isinstance(error, tg.Forbidden):
        text = _verbatim(error, answer, token)
        return TelegramPermanentError(text, reason=reason_of(text) or "forbidden")
    if isinstance(error, tg.TimedOut):
        return TelegramRetryableError(text or "request timed out", reason="timeout")
    if isinstance(error, tg.NetworkError):
        return TelegramRetryableError(text, reason="server_or_network")
    if isinstance(error, tg.TelegramError):
        return TelegramRetryableError(text, reason="telegram_error")
    return TelegramRetryableError(f"{type(error).__name__}: {text}", reason="unexpected")
