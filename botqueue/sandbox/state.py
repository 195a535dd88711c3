"""The sandbox's world in memory: bots, users, chats, invite links, messages, request counts.

Everything is plain data mutated from the event loop's thread only, so no locks are needed;
every lookup the Bot API handlers make is a dict access.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from typing import Any

from .channel import Channel, InviteLink, SentMessage, Status
from .world import BotSpec, ChannelSpec, UserSpec, WorldSpec


class JoinRefused(Exception):
    """A user could not join through an invite link; the message says why."""


class SandboxState:
    """The whole world plus what happened in it: links, messages and request counts."""

    def __init__(self, world: WorldSpec) -> None:
        self.reset(world)

    def reset(self, world: WorldSpec) -> None:
        """Load a world and forget all history: request counts and the clock offset too."""
        self.clock_offset = 0.0
        self.requests: Counter[str] = Counter()
        self.total_requests = 0
        self.rate_limited = 0
        self.kick_seconds = 0.0
        """How long a plain unbanChatMember of a member takes (TDLib: 1 s; see methods.py)."""
        self.load(world)

    def request_counts(self) -> dict[str, Any]:
        """Calls per method, the total, and how many were answered 429."""
        return {
            "methods": dict(self.requests),
            "total": self.total_requests,
            "rate_limited": self.rate_limited,
        }

    def load(self, world: WorldSpec) -> None:
        """Replace the world; links, messages and join requests start empty."""
        self.bots: dict[str, BotSpec] = {bot.token: bot for bot in world.bots}
        self.bots_by_id: dict[int, BotSpec] = {bot.id: bot for bot in world.bots}
        self.users: dict[int, UserSpec] = {user.id: user for user in world.users}
        self.channels: dict[int, Channel] = {}
        self.usernames: dict[str, int] = {}
        for spec in world.channels:
            self.put_channel(Channel.from_spec(spec))
        self.links: dict[str, InviteLink] = {}
        self.messages: list[SentMessage] = []
        self._message_ids: Counter[int] = Counter()

    def now(self) -> int:
        """The sandbox's wall-clock time in Unix seconds (the control API can move it)."""
        return int(time.time() + self.clock_offset)

    def put_channel(self, channel: Channel) -> None:
        """Add or replace a chat, keeping the username index right."""
        old = self.channels.get(channel.id)
        if old is not None and old.username:
            self.usernames.pop(old.username.lower(), None)
        self.channels[channel.id] = channel
        if channel.username:
            self.usernames[channel.username.lower()] = channel.id

    def find_chat(self, chat_id: int | str) -> Channel | None:
        """A chat by id or by "@username"."""
        if isinstance(chat_id, str):
            if not chat_id.startswith("@"):
                return None
            found = self.usernames.get(chat_id.removeprefix("@").lower())
            return None if found is None else self.channels.get(found)
        return self.channels.get(chat_id)

    def status(self, channel: Channel, user_id: int) -> Status:
        """Anyone's status in a chat, bots included."""
        if user_id in self.bots_by_id:
            if channel.bot_kicked:
                return "kicked"
            return "administrator" if channel.bot_rights is not None else "left"
        return channel.status_of(user_id)

    def new_link(self, channel: Channel, bot: BotSpec, **fields: Any) -> InviteLink:
        """Create an invite link with a fresh random hash."""
        url = f"https://t.me/+{secrets.token_urlsafe(12)}"
        link = InviteLink(invite_link=url, chat_id=channel.id, creator_id=bot.id, **fields)
        self.links[url] = link
        return link

    def link_usage(self, link: InviteLink) -> int:
        """How many current members came through a link (member_limit counts these)."""
        channel = self.channels[link.chat_id]
        return sum(1 for via in channel.joined_via.values() if via == link.invite_link)

    def join(self, user_id: int, url: str) -> str:
        """A user opens an invite link: "member" (or "restricted" if they left restricted),
        "pending" (awaiting approval), or refused."""
        user = self.users.get(user_id)
        if user is None:
            raise JoinRefused("user not found")
        if user.deactivated:
            raise JoinRefused("user is deactivated")
        link = self.links.get(url)
        if link is None:
            raise JoinRefused("invite link not found")
        if link.is_revoked:
            raise JoinRefused("invite link revoked")
        if link.expire_date is not None and self.now() >= link.expire_date:
            raise JoinRefused("invite link expired")
        chat = self.channels[link.chat_id]
        status = chat.status_of(user_id)
        if status == "kicked":
            raise JoinRefused("user is banned from the chat")
        if chat.is_in(user_id):
            raise JoinRefused("user is already a member")
        if link.creates_join_request:
            chat.pending[user_id] = url
            return "pending"
        if link.member_limit is not None and self.link_usage(link) >= link.member_limit:
            raise JoinRefused("invite link member limit reached")
        chat.admit(user_id, url)
        return chat.status_of(user_id)

    def record_message(self, chat_id: int, bot: BotSpec, text: str, **extra: Any) -> SentMessage:
        """Store a sent message with the chat's next message id."""
        self._message_ids[chat_id] += 1
        message = SentMessage(
            message_id=self._message_ids[chat_id],
            chat_id=chat_id,
            bot_id=bot.id,
            date=self.now(),
            text=text,
            **extra,
        )
        self.messages.append(message)
        return message

    def migrate(self, chat_id: int, to_chat_id: int) -> Channel:
        """Move a chat to a new id (a group's upgrade to a supergroup); the old id answers 400."""
        old = self.channels[chat_id]
        new = self.channels.get(to_chat_id)
        if new is None:
            new = Channel.from_spec(
                ChannelSpec.model_validate(
                    {
                        **old.to_spec(),
                        "id": to_chat_id,
                        "type": "supergroup",
                        "username": None,
                        "state": "active",
                    }
                )
            )
        old.migrated_to = to_chat_id
        if old.username:
            self.usernames.pop(old.username.lower(), None)
            new.username = new.username or old.username
        self.put_channel(new)
        return new

    def world(self) -> dict[str, Any]:
        """The current world as a world file."""
        return {
            "bots": [bot.model_dump() for bot in self.bots.values()],
            "channels": [c.to_spec() for c in self.channels.values() if c.migrated_to is None],
            "users": [user.model_dump() for user in self.users.values()],
        }
