"""The Bot API methods the sandbox implements, with Telegram's checks in Telegram's order.

A handler takes a :class:`Call` and returns the ``result`` value, or raises :class:`ApiError`.
Parameters are parsed before the chat is looked up, as the official server does, so a
missing ``user_id`` is reported even for a chat that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from . import errors as e
from .access import (
    Call,
    open_member_list,
    reach_telegram,
    require_right,
    require_user,
    resolve_user,
    target_chat,
)
from .channel import IN_CHAT, Channel
from .errors import ApiError
from .objects import (
    bot_json,
    chat_json,
    full_info,
    invite_link_json,
    member_json,
    message_json,
    private_chat_json,
)

MAX_LINK_NAME = 32
"""Telegram cuts invite link names to this many characters."""
MAX_MEMBER_LIMIT = 99999
"""The largest member_limit Telegram accepts."""
_FOREVER_BELOW, _FOREVER_ABOVE = 30, 366 * 86400
TDLIB_KICK_SECONDS = 1.0
"""How long TDLib waits between kicking a member (a 60 s ban) and setting them Left, in a
plain unbanChatMember (DialogParticipantManager's RestrictChannelParticipantSleepActor). The
sandbox waits ``state.kick_seconds``: 0 unless set (control API ``POST kick``)."""
KICK_BAN_SECONDS = 60

Handler = Callable[[Call], Any]
"""A method implementation: a call in, the ``result`` value out."""


def get_me(call: Call) -> Any:
    """getMe: the bot's own User object."""
    return bot_json(call.bot, full=True)


def ok(call: Call) -> Any:
    """logOut and close: nothing to do locally."""
    return True


def get_chat(call: Call) -> Any:
    """getChat: a ChatFullInfo for a channel or a private chat with a user."""
    chat_id = call.args.chat_id()
    user = call.state.users.get(chat_id) if isinstance(chat_id, int) else None
    if user is not None:
        if not user.started_bot or user.deactivated or not user.known_to_bot:
            raise ApiError(e.CHAT_NOT_FOUND)
        return full_info(private_chat_json(user))
    channel = target_chat(call, "read")
    reach_telegram(channel)
    return full_info(chat_json(channel))


def get_chat_member(call: Call) -> Any:
    """getChatMember: anyone's membership; someone never in the chat is "left"."""
    user_id = call.args.user_id()
    channel = target_chat(call, "read" if user_id == call.bot.id else "members")
    resolve_user(call, user_id)
    open_member_list(channel)
    reach_telegram(channel)
    return member_json(call.state, channel, user_id, call.state.status(channel, user_id))


def get_chat_administrators(call: Call) -> Any:
    """getChatAdministrators: the creator, the human administrators and the bots."""
    channel = target_chat(call, "members", e.NO_ADMINS_IN_PRIVATE)
    open_member_list(channel)
    reach_telegram(channel)
    state = call.state
    people = [] if channel.creator is None else [channel.creator]
    people += sorted(channel.admins) + sorted(state.bots_by_id)
    return [member_json(state, channel, uid, state.status(channel, uid)) for uid in people]


def create_chat_invite_link(call: Call) -> Any:
    """createChatInviteLink: a new link; limits are read and checked as Telegram does."""
    args = call.args
    name = " ".join(args.text("name").split())[:MAX_LINK_NAME] or None
    expire_date = args.clamped("expire_date", 0, low=0)
    member_limit = args.clamped("member_limit", 0, low=0, high=MAX_MEMBER_LIMIT + 1)
    creates_join_request = args.flag("creates_join_request")
    channel = target_chat(call, private_error=e.CANT_INVITE_TO_PRIVATE)
    require_right(channel, "can_invite_users", e.NOT_ENOUGH_RIGHTS_INVITE)
    if creates_join_request and member_limit:
        raise ApiError(e.MEMBER_LIMIT_WITH_JOIN_REQUEST)
    reach_telegram(channel)
    if expire_date and expire_date <= call.state.now():
        raise ApiError(e.EXPIRE_DATE_INVALID)
    if member_limit > MAX_MEMBER_LIMIT:
        raise ApiError(e.USAGE_LIMIT_INVALID)
    link = call.state.new_link(
        channel,
        call.bot,
        name=name,
        expire_date=expire_date or None,
        member_limit=member_limit or None,
        creates_join_request=creates_join_request,
    )
    return invite_link_json(call.state, link)


def revoke_chat_invite_link(call: Call) -> Any:
    """revokeChatInviteLink: the link, now revoked."""
    channel = target_chat(call, private_error=e.CANT_INVITE_TO_PRIVATE)
    require_right(channel, "can_invite_users", e.NOT_ENOUGH_RIGHTS_INVITE)
    url = call.args.text("invite_link").strip()
    if not url:
        raise ApiError(e.INVITE_LINK_EMPTY)
    reach_telegram(channel)
    link = call.state.links.get(url)
    if link is None or link.chat_id != channel.id:
        raise ApiError(e.INVITE_HASH_EXPIRED)
    link.is_revoked = True
    return invite_link_json(call.state, link)


def _check_removable(call: Call, channel: Channel, user_id: int) -> None:
    reach_telegram(channel)
    resolve_user(call, user_id)
    status = call.state.status(channel, user_id)
    if status == "creator":
        raise ApiError(e.CANT_REMOVE_OWNER)
    if status == "administrator":
        raise ApiError(e.USER_IS_ADMIN)


def ban_chat_member(call: Call) -> Any:
    """banChatMember: out of the chat and kept out (until_date outside 30 s-366 d is forever)."""
    user_id = call.args.user_id()
    until_date = call.args.clamped("until_date", 0, low=0)
    channel = target_chat(call, private_error=e.SUPERGROUP_AND_CHANNEL_ONLY)
    require_right(channel, "can_restrict_members", e.NOT_ENOUGH_RIGHTS_RESTRICT)
    _check_removable(call, channel, user_id)
    now = call.state.now()
    if not now + _FOREVER_BELOW <= until_date <= now + _FOREVER_ABOVE:
        until_date = 0
    channel.ban(user_id, until_date)
    return True


def unban_chat_member(call: Call) -> Any:
    """unbanChatMember: the user ends "left"; a plain unban removes a member, as Telegram's does.

    Read in tdlib/telegram-bot-api 01a3679c (2026-05-07) and tdlib/td 022d6020 (2026-07-17);
    the Bot API documents the outcome ("if the user is a member of the chat they will also be
    removed from the chat"), and docs/telegram.md lists public threads that agree.
    Client.cpp (process_unban_chat_member_query) refuses basic groups,
    then: with only_if_banned it answers true for anyone not banned before any rights check;
    without it, it asks TDLib to set the status to Left (setChatMemberStatus). TDLib's
    DialogParticipantManager compares that with the current status: already "left" is true
    at once, with no call to Telegram and so no rights check; the owner is "can't remove chat
    owner"; everyone else goes through restrict_channel_participant, which checks
    can_restrict_members, and Telegram refuses an administrator (USER_ADMIN_INVALID). A member
    or a restricted member is "kicked" first (a ban until now + 60 s), then made Left a second
    later ("we can't make participant Left without kicking it first"); a banned user or a
    restricted non-member is made Left directly. Either way the user ends "left", restrictions
    lifted, free to join again. With ``state.kick_seconds`` set, a member is answered after
    that long and is "kicked" (until now + 60 s) meanwhile, as on Telegram.
    """
    user_id = call.args.user_id()
    only_if_banned = call.args.flag("only_if_banned")
    channel = target_chat(call, private_error=e.SUPERGROUP_AND_CHANNEL_ONLY)
    if channel.type == "group":
        raise ApiError(e.SUPERGROUP_AND_CHANNEL_ONLY)
    reach_telegram(channel)
    resolve_user(call, user_id)
    status = call.state.status(channel, user_id)
    if status == "left" or (only_if_banned and status != "kicked"):
        return True
    if status == "creator":
        raise ApiError(e.CANT_REMOVE_OWNER)
    require_right(channel, "can_restrict_members", e.NOT_ENOUGH_RIGHTS_RESTRICT)
    if status == "administrator":
        raise ApiError(e.USER_IS_ADMIN)
    if call.state.kick_seconds and channel.is_in(user_id):
        channel.ban(user_id, call.state.now() + KICK_BAN_SECONDS)
        return _left_later(channel, user_id, call.state.kick_seconds)
    channel.remove(user_id)
    return True


async def _left_later(channel: Channel, user_id: int, seconds: float) -> bool:
    await asyncio.sleep(seconds)
    channel.remove(user_id)
    return True


def _join_request(call: Call) -> tuple[Channel, int]:
    user_id = call.args.user_id()
    channel = target_chat(call, private_error=e.NO_JOIN_REQUESTS_IN_PRIVATE)
    require_right(channel, "can_invite_users", e.NOT_ENOUGH_RIGHTS_JOIN_REQUESTS)
    require_user(call, user_id)
    reach_telegram(channel)
    return channel, user_id


def approve_chat_join_request(call: Call) -> Any:
    """approveChatJoinRequest: the requester becomes a member."""
    channel, user_id = _join_request(call)
    if call.state.status(channel, user_id) in IN_CHAT and channel.is_in(user_id):
        raise ApiError(e.USER_ALREADY_PARTICIPANT)
    if user_id not in channel.pending:
        raise ApiError(e.HIDE_REQUESTER_MISSING)
    channel.admit(user_id, channel.pending[user_id])
    return True


def decline_chat_join_request(call: Call) -> Any:
    """declineChatJoinRequest: the request is dropped."""
    channel, user_id = _join_request(call)
    if channel.pending.pop(user_id, None) is None:
        raise ApiError(e.HIDE_REQUESTER_MISSING)
    return True


def send_message(call: Call) -> Any:
    """sendMessage: to a user who started the bot, or into a chat the bot may post in."""
    args = call.args
    text = args.text("text")
    if not text.strip():
        raise ApiError(e.MESSAGE_TEXT_EMPTY)
    chat_id = args.chat_id()
    state = call.state
    user = state.users.get(chat_id) if isinstance(chat_id, int) else None
    if user is not None:
        if not user.known_to_bot:
            raise ApiError(e.CHAT_NOT_FOUND)
        if user.deactivated:
            raise ApiError(e.USER_DEACTIVATED)
        if user.blocked_bot:
            raise ApiError(e.BOT_BLOCKED)
        if not user.started_bot:
            raise ApiError(e.BOT_NOT_STARTED)
        chat = private_chat_json(user)
    elif isinstance(chat_id, int) and chat_id in state.bots_by_id:
        raise ApiError(e.BOT_CANT_SEND_TO_THE_BOT)
    else:
        channel = target_chat(call)
        if channel.type == "channel":
            require_right(channel, "can_post_messages", e.NEED_ADMIN_RIGHTS_CHANNEL)
        reach_telegram(channel)
        chat = chat_json(channel)
    message = state.record_message(
        chat["id"],
        call.bot,
        text,
        parse_mode=args.text("parse_mode") or None,
        reply_markup=args.json_value("reply_markup"),
    )
    return message_json(state, message, chat)


METHODS: dict[str, Handler] = {
    "getMe": get_me,
    "logOut": ok,
    "close": ok,
    "getChat": get_chat,
    "getChatMember": get_chat_member,
    "getChatAdministrators": get_chat_administrators,
    "createChatInviteLink": create_chat_invite_link,
    "revokeChatInviteLink": revoke_chat_invite_link,
    "banChatMember": ban_chat_member,
    "kickChatMember": ban_chat_member,
    "unbanChatMember": unban_chat_member,
    "approveChatJoinRequest": approve_chat_join_request,
    "declineChatJoinRequest": decline_chat_join_request,
    "sendMessage": send_message,
}
"""Every implemented method by its documented name (kickChatMember is the old banChatMember)."""

CANONICAL: dict[str, str] = {name.lower(): name for name in METHODS}
"""Lower-case method name to documented name: Telegram matches names case-insensitively."""
