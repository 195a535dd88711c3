"""Telegram's result objects (User, Chat, ChatFullInfo, ChatMember, ChatInviteLink, Message).

Field sets follow the Bot API documentation; every field aiogram 3.31 or python-telegram-bot
22.8 requires is present, and optional fields are left out when empty, as Telegram does.
"""

from __future__ import annotations

from typing import Any

from .channel import Channel, InviteLink, SentMessage, Status
from .state import SandboxState
from .world import BotSpec, RightsSpec, UserSpec

JSON = dict[str, Any]
"""A JSON object."""

# Rights every ChatMemberAdministrator carries, and those only channels or groups carry.
_COMMON_RIGHTS = (
    "can_manage_chat",
    "can_delete_messages",
    "can_manage_video_chats",
    "can_restrict_members",
    "can_promote_members",
    "can_change_info",
    "can_invite_users",
    "can_post_stories",
    "can_edit_stories",
    "can_delete_stories",
    "can_send_welcome_messages",
)
_CHANNEL_RIGHTS = ("can_post_messages", "can_edit_messages", "can_manage_direct_messages")
_GROUP_RIGHTS = ("can_pin_messages", "can_manage_topics")
HUMAN_ADMIN_RIGHTS = RightsSpec.model_validate(
    {name: True for name in (*_COMMON_RIGHTS, *_CHANNEL_RIGHTS, *_GROUP_RIGHTS)}
    | {"can_promote_members": False}
)
"""What a human administrator may do in the sandbox: everything but promote others."""
_RESTRICTED_FLAGS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)
_NO_GIFTS = {
    "unlimited_gifts": False,
    "limited_gifts": False,
    "unique_gifts": False,
    "premium_subscription": False,
    "gifts_from_channels": False,
}


def _drop_none(data: JSON) -> JSON:
    return {key: value for key, value in data.items() if value is not None}


def user_json(user: UserSpec) -> JSON:
    """A User object for a person."""
    return _drop_none(
        {
            "id": user.id,
            "is_bot": False,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "username": user.username,
            "language_code": user.language_code,
        }
    )


def bot_json(bot: BotSpec, *, full: bool = False) -> JSON:
    """A User object for a bot; ``full`` adds the fields only getMe returns."""
    data: JSON = {
        "id": bot.id,
        "is_bot": True,
        "first_name": bot.first_name,
        "username": bot.username,
    }
    if full:
        data |= {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
    return data


def person_json(state: SandboxState, user_id: int) -> JSON:
    """A User object for anyone the world knows (the caller checked they exist)."""
    bot = state.bots_by_id.get(user_id)
    return bot_json(bot) if bot is not None else user_json(state.users[user_id])


def chat_json(channel: Channel) -> JSON:
    """A Chat object for a channel or group."""
    return _drop_none(
        {
            "id": channel.id,
            "type": channel.type,
            "title": channel.title,
            "username": channel.username,
        }
    )


def private_chat_json(user: UserSpec) -> JSON:
    """A Chat object for a private chat with a user."""
    return _drop_none(
        {
            "id": user.id,
            "type": "private",
            "first_name": user.first_name,
            "last_name": user.last_name,
            "username": user.username,
        }
    )


def full_info(chat: JSON) -> JSON:
    """A ChatFullInfo object: the Chat plus the fields getChat always returns."""
    return chat | {
        "accent_color_id": abs(chat["id"]) % 7,
        "max_reaction_count": 11,
        "accepted_gift_types": dict(_NO_GIFTS),
    }


def _rights(rights: RightsSpec, chat_type: str) -> JSON:
    names = _COMMON_RIGHTS + (_CHANNEL_RIGHTS if chat_type == "channel" else _GROUP_RIGHTS)
    return {name: getattr(rights, name) for name in names}


def member_json(state: SandboxState, channel: Channel, user_id: int, status: Status) -> JSON:
    """A ChatMember object of the subtype matching ``status``."""
    data: JSON = {"user": person_json(state, user_id), "status": status}
    if status == "creator":
        data["is_anonymous"] = False
    elif status == "administrator":
        is_bot = user_id in state.bots_by_id
        rights = channel.bot_rights if is_bot and channel.bot_rights else HUMAN_ADMIN_RIGHTS
        data |= {"can_be_edited": False, "is_anonymous": rights.is_anonymous}
        data |= _rights(rights, channel.type)
    elif status == "restricted":
        data |= dict.fromkeys(_RESTRICTED_FLAGS, False)
        data |= {"is_member": user_id not in channel.restricted_out, "until_date": 0}
    elif status == "kicked":
        data["until_date"] = channel.banned.get(user_id, 0)
    return data


def invite_link_json(state: SandboxState, link: InviteLink) -> JSON:
    """A ChatInviteLink object."""
    pending = None
    if link.creates_join_request:
        channel = state.channels[link.chat_id]
        pending = sum(1 for via in channel.pending.values() if via == link.invite_link)
    return _drop_none(
        {
            "invite_link": link.invite_link,
            "creator": bot_json(state.bots_by_id[link.creator_id]),
            "creates_join_request": link.creates_join_request,
            "is_primary": False,
            "is_revoked": link.is_revoked,
            "name": link.name,
            "expire_date": link.expire_date,
            "member_limit": link.member_limit,
            "pending_join_request_count": pending,
        }
    )


def message_json(state: SandboxState, message: SentMessage, chat: JSON) -> JSON:
    """A Message object for a message a bot sent; channel posts have a sender_chat."""
    data: JSON = {"message_id": message.message_id}
    if chat["type"] == "channel":
        data["sender_chat"] = chat
    else:
        data["from"] = bot_json(state.bots_by_id[message.bot_id])
    data |= {"date": message.date, "chat": chat, "text": message.text}
    if message.reply_markup is not None:
        data["reply_markup"] = message.reply_markup
    return data
