"""Telegram's error answers: the envelope, and the exact descriptions the sandbox uses.

Each description is Telegram's own text; docs/sandbox.md lists where each was confirmed.
The HTTP status always equals ``error_code`` and follows from the description's prefix.
"""

from __future__ import annotations

from typing import Any

_CODES = {
    "Bad Request": 400,
    "Unauthorized": 401,
    "Forbidden": 403,
    "Not Found": 404,
    "Conflict": 409,
    "Too Many Requests": 429,
    "Internal Server Error": 500,
    # api.telegram.org's front end, not the Bot API server, answers with these.
    "Bad Gateway": 502,
    "Service Unavailable": 503,
    "Gateway Timeout": 504,
}

UNAUTHORIZED = "Unauthorized"
NOT_FOUND = "Not Found"
CHAT_ID_EMPTY = "Bad Request: chat_id is empty"
CHAT_NOT_FOUND = "Bad Request: chat not found"
INVALID_USER_ID_SPECIFIED = "Bad Request: invalid user_id specified"
MESSAGE_TEXT_EMPTY = "Bad Request: message text is empty"
CHAT_MIGRATED = "Bad Request: group chat was upgraded to a supergroup chat"
NOT_ENOUGH_RIGHTS_INVITE = "Bad Request: not enough rights to manage chat invite link"
NOT_ENOUGH_RIGHTS_RESTRICT = "Bad Request: not enough rights to restrict/unrestrict chat member"
NOT_ENOUGH_RIGHTS_JOIN_REQUESTS = "Bad Request: not enough rights to manage chat join requests"
NEED_ADMIN_RIGHTS_CHANNEL = "Bad Request: need administrator rights in the channel chat"
USER_IS_ADMIN = "Bad Request: user is an administrator of the chat"
CANT_REMOVE_OWNER = "Bad Request: can't remove chat owner"
MEMBER_LIMIT_WITH_JOIN_REQUEST = (
    "Bad Request: member limit can't be specified for links requiring administrator approval"
)
EXPIRE_DATE_INVALID = "Bad Request: EXPIRE_DATE_INVALID"
USAGE_LIMIT_INVALID = "Bad Request: USAGE_LIMIT_INVALID"
INVITE_LINK_EMPTY = "Bad Request: invite link must be non-empty"
INVITE_HASH_EXPIRED = "Bad Request: INVITE_HASH_EXPIRED"
HIDE_REQUESTER_MISSING = "Bad Request: HIDE_REQUESTER_MISSING"
USER_ALREADY_PARTICIPANT = "Bad Request: USER_ALREADY_PARTICIPANT"
SUPERGROUP_AND_CHANNEL_ONLY = (
    "Bad Request: method is available for supergroup and channel chats only"
)
NO_ADMINS_IN_PRIVATE = "Bad Request: there are no administrators in the private chat"
CANT_INVITE_TO_PRIVATE = "Bad Request: can't invite members to a private chat"
NO_JOIN_REQUESTS_IN_PRIVATE = "Bad Request: the chat can't have join requests"
BOT_NOT_STARTED = "Forbidden: bot can't initiate conversation with a user"
BOT_BLOCKED = "Forbidden: bot was blocked by the user"
USER_DEACTIVATED = "Forbidden: user is deactivated"

# A user the chat has but the bot's server cannot look up, and the MTProto errors Telegram's
# servers give for a member they will not show; all pass through as "Bad Request: <NAME>".
USER_NOT_FOUND = "Bad Request: user not found"
MEMBER_NOT_FOUND = "Bad Request: member not found"
PARTICIPANT_ID_INVALID = "Bad Request: PARTICIPANT_ID_INVALID"
USER_ID_INVALID = "Bad Request: USER_ID_INVALID"
PEER_ID_INVALID = "Bad Request: PEER_ID_INVALID"
USER_BANNED_IN_CHANNEL = "Bad Request: USER_BANNED_IN_CHANNEL"
CHAT_ADMIN_REQUIRED = "Bad Request: CHAT_ADMIN_REQUIRED"
MEMBER_LIST_INACCESSIBLE = "Bad Request: member list is inaccessible"

# Chats the bot can no longer reach.
CHANNEL_PRIVATE = "Bad Request: CHANNEL_PRIVATE"
GROUP_CHAT_DELETED = "Forbidden: the group chat was deleted"
GROUP_CHAT_WAS_DEACTIVATED = "Bad Request: group chat was deactivated"
"""The deleted group's text from the open-source server's first release until May 2021."""
GROUP_IS_DEACTIVATED = "Bad Request: group is deactivated"
"""The deleted group's text before the server was open-sourced (aiogram matched it until 2021)."""

# Sending to a bot: TDLib's text changed twice (tdlib/td 0cbda12b4, 6399d7472).
BOT_CANT_SEND_TO_THE_BOT = "Forbidden: the bot can't send messages to the bot"
"""Since TDLib of 2026-05-04, which Bot API 10.0 runs: what the sandbox answers."""
BOTS_CANT_SEND_TO_BOTS = "Forbidden: bots can't send messages to bots"
"""From January 2024 to May 2026."""
BOT_CANT_SEND_TO_BOTS = "Forbidden: bot can't send messages to bots"
"""Until January 2024."""


def bot_not_member(chat_type: str) -> str:
    """Telegram's answer when the bot is not in the chat ("channel", "supergroup", "group")."""
    return f"Forbidden: bot is not a member of the {chat_type} chat"


def bot_kicked(chat_type: str) -> str:
    """Telegram's answer when the bot was removed from the chat."""
    return f"Forbidden: bot was kicked from the {chat_type} chat"


def too_many_requests(retry_after: int) -> str:
    """Telegram's flood-control description."""
    return f"Too Many Requests: retry after {retry_after}"


def known_code(description: str) -> int | None:
    """The error code Telegram pairs with a description's prefix, None for an unknown prefix."""
    return _CODES.get(description.partition(":")[0])


def code_for(description: str) -> int:
    """The error code Telegram pairs with a description (400 when the prefix is unknown)."""
    code = known_code(description)
    return 400 if code is None else code


class ApiError(Exception):
    """A Bot API call failed; rendered as Telegram's ``{"ok": false, ...}`` envelope."""

    def __init__(
        self,
        description: str,
        *,
        code: int | None = None,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.code = code if code is not None else code_for(description)
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def envelope(self) -> dict[str, Any]:
        """The JSON body Telegram sends for this error."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        parameters: dict[str, int] = {}
        if self.retry_after is not None:
            parameters["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            parameters["migrate_to_chat_id"] = self.migrate_to_chat_id
        if parameters:
            body["parameters"] = parameters
        return body
