"""Whether a call may reach its chat and its user, checked where and as Telegram checks it.

First the Bot API server's own checks against what it knows (tdlib/telegram-bot-api
Client.cpp ``check_chat``, ``check_chat_access``): the chat exists, has not moved, and the bot
is in it, unless the chat is public and the call only reads it. Then TDLib's and Telegram's
servers answer: a channel's member list is closed to a bot that is not its administrator, a
user the bot cannot look up is "user not found", and an inaccessible chat is CHANNEL_PRIVATE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from . import errors as e
from .channel import Channel
from .errors import ApiError
from .params import Args
from .state import SandboxState
from .world import BotSpec

Access = Literal["read", "members", "write"]
"""What a method needs, as Client.cpp's AccessRights: Read (getChat, getChatMember of the bot
itself), ReadMembers (getChatMember of anyone else, getChatAdministrators) or Write."""


@dataclass
class Call:
    """One Bot API call: the world, the calling bot and the parameters."""

    state: SandboxState
    bot: BotSpec
    args: Args


def target_chat(
    call: Call, access: Access = "write", private_error: str = e.CHAT_NOT_FOUND
) -> Channel:
    """The call's chat, after the Bot API server's existence, migration and bot-access checks.

    ``private_error`` is the answer when ``chat_id`` is a private chat with a known user.
    """
    chat_id = call.args.chat_id()
    channel = call.state.find_chat(chat_id)
    if channel is None:
        user = call.state.users.get(chat_id) if isinstance(chat_id, int) else None
        private = user is not None and user.known_to_bot
        raise ApiError(private_error if private else e.CHAT_NOT_FOUND)
    if channel.migrated_to is not None:
        raise ApiError(e.CHAT_MIGRATED, migrate_to_chat_id=channel.migrated_to)
    if channel.type == "group" and channel.state == "deleted":
        raise ApiError(e.GROUP_CHAT_DELETED)
    if channel.bot_kicked:
        raise ApiError(e.bot_kicked(channel.type))
    if channel.bot_rights is None and not _readable_unjoined(channel, access):
        raise ApiError(e.bot_not_member(channel.type))
    return channel


def _readable_unjoined(channel: Channel, access: Access) -> bool:
    # check_chat_access: for a public supergroup or channel only edit and write access need
    # membership. Basic groups are never public.
    return channel.type != "group" and bool(channel.username) and access != "write"


def require_right(channel: Channel, right: str, description: str) -> None:
    """Refuse unless the bot is an administrator with ``right``."""
    if not getattr(channel.bot_rights, right, False):
        raise ApiError(description)


def open_member_list(channel: Channel) -> None:
    """TDLib refuses a channel's members to a bot that is not one of its administrators."""
    if channel.type == "channel" and channel.bot_rights is None:
        raise ApiError(e.MEMBER_LIST_INACCESSIBLE)


def reach_telegram(channel: Channel) -> None:
    """The call leaves the Bot API server; an inaccessible chat answers CHANNEL_PRIVATE.

    TDLib then records the chat as forbidden (ChatManager::on_get_channel_error), so a bot
    that believed itself a member is from now on answered "bot was kicked".
    """
    if channel.state != "inaccessible":
        return
    if channel.bot_rights is not None:
        channel.bot_rights = None
        channel.bot_kicked = True
    raise ApiError(e.CHANNEL_PRIVATE)


def resolve_user(call: Call, user_id: int) -> None:
    """The target user as getChatMember, ban and unban look them up: "user not found" if the
    world has no such user or the bot's server does not know them."""
    if user_id in call.state.bots_by_id:
        return
    user = call.state.users.get(user_id)
    if user is None or not user.known_to_bot:
        raise ApiError(e.USER_NOT_FOUND)


def require_user(call: Call, user_id: int) -> None:
    """The target user must exist; a join request introduces its user to the bot."""
    if user_id not in call.state.users and user_id not in call.state.bots_by_id:
        raise ApiError(e.USER_NOT_FOUND)
