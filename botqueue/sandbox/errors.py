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
    "Too Many Requests": 429,
    "Internal Server Error": 500,
}

UNAUTHORIZED = "Unauthorized"
NOT_FOUND = "Not Found"
CHAT_ID_EMPTY = "Bad Request: chat_id is empty"
CHAT_NOT_FOUND = "Bad Request: chat not found"
USER_ID_INVALID = "Bad Request: invalid user_id specified"
USER_NOT_FOUND = "Bad Request: user not found"
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
BOT_TO_BOT = "Forbidden: bot can't send messages to bots"


def bot_not_member(chat_type: str) -> str:
    """Telegram's answer when the bot is not in the chat ("channel", "supergroup", "group")."""
    return f"Forbidden: bot is not a member of the {chat_type} chat"


def bot_kicked(chat_type: str) -> str:
    """Telegram's answer when the bot was removed from the chat."""
    return f"Forbidden: bot was kicked from the {chat_type} chat"


def too_many_requests(retry_after: int) -> str:
    """Telegram's flood-control description."""
    return f"Too Many Requests: retry after {retry_after}"


def code_for(description: str) -> int:
    """The error code Telegram pairs with a description (400 when the prefix is unknown)."""
    return _CODES.get(description.partition(":")[0], 400)


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
