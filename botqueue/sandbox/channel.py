"""The things the world is made of: chats with their members, invite links, sent messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .world import ChannelSpec, ChatState, RightsSpec

Status = Literal["creator", "administrator", "member", "restricted", "left", "kicked"]
"""A ChatMember status."""
IN_CHAT: tuple[Status, ...] = ("creator", "administrator", "member", "restricted")
"""The statuses of someone who is in the chat."""


@dataclass
class Channel:
    """A chat and its members; each user holds at most one role."""

    id: int
    type: str
    title: str
    username: str | None
    creator: int | None
    bot_rights: RightsSpec | None
    bot_kicked: bool = False
    state: ChatState = "active"
    admins: set[int] = field(default_factory=set)
    members: set[int] = field(default_factory=set)
    restricted: set[int] = field(default_factory=set)
    restricted_out: set[int] = field(default_factory=set)
    banned: dict[int, int] = field(default_factory=dict)
    pending: dict[int, str] = field(default_factory=dict)
    joined_via: dict[int, str] = field(default_factory=dict)
    migrated_to: int | None = None

    @classmethod
    def from_spec(cls, spec: ChannelSpec) -> Channel:
        """Build a channel from its world-file entry."""
        rights = spec.bot_rights if isinstance(spec.bot_rights, RightsSpec) else None
        return cls(
            id=spec.id,
            type=spec.type,
            title=spec.title,
            username=spec.username,
            creator=spec.creator,
            bot_rights=rights,
            bot_kicked=spec.bot_rights == "kicked",
            state=spec.state,
            admins=set(spec.admins),
            members=set(spec.members),
            restricted=set(spec.restricted),
            restricted_out=set(spec.restricted_out),
            banned=dict.fromkeys(spec.banned, 0),
        )

    def status_of(self, user_id: int) -> Status:
        """A person's status in the chat, as getChatMember reports it."""
        if user_id == self.creator:
            return "creator"
        if user_id in self.admins:
            return "administrator"
        if user_id in self.members:
            return "member"
        if user_id in self.restricted or user_id in self.restricted_out:
            return "restricted"
        if user_id in self.banned:
            return "kicked"
        return "left"

    def is_in(self, user_id: int) -> bool:
        """Whether the user is in the chat (a restricted user may be out of it)."""
        return self.status_of(user_id) in IN_CHAT and user_id not in self.restricted_out

    def remove(self, user_id: int) -> None:
        """Take a user out of every role (they are then "left")."""
        self.members.discard(user_id)
        self.restricted.discard(user_id)
        self.restricted_out.discard(user_id)
        self.banned.pop(user_id, None)
        self.joined_via.pop(user_id, None)

    def ban(self, user_id: int, until_date: int) -> None:
        """Remove a user and keep them out."""
        self.remove(user_id)
        self.pending.pop(user_id, None)
        self.banned[user_id] = until_date

    def admit(self, user_id: int, link: str | None) -> None:
        """Make a user a member, remembering the link they came through."""
        self.pending.pop(user_id, None)
        if user_id in self.restricted_out:
            # Restrictions outlive leaving: they come back restricted.
            self.restricted_out.discard(user_id)
            self.restricted.add(user_id)
        else:
            self.members.add(user_id)
        if link is not None:
            self.joined_via[user_id] = link

    def roster(self) -> dict[str, Any]:
        """Who is in the chat, for the control API."""
        return {
            "creator": self.creator,
            "admins": sorted(self.admins),
            "members": sorted(self.members),
            "restricted": sorted(self.restricted),
            "restricted_out": sorted(self.restricted_out),
            "banned": sorted(self.banned),
            "pending": sorted(self.pending),
        }

    def to_spec(self) -> dict[str, Any]:
        """This chat as a world-file entry."""
        rights: Any = "kicked" if self.bot_kicked else None
        if self.bot_rights is not None:
            rights = self.bot_rights.model_dump()
        return {
            "id": self.id,
            "type": self.type,
            "title": self.title,
            "username": self.username,
            "creator": self.creator,
            "bot_rights": rights,
            "state": self.state,
            "admins": sorted(self.admins),
            "members": sorted(self.members),
            "restricted": sorted(self.restricted),
            "restricted_out": sorted(self.restricted_out),
            "banned": sorted(self.banned),
        }


@dataclass
class InviteLink:
    """An invite link created by a bot, and who came through it."""

    invite_link: str
    chat_id: int
    creator_id: int
    name: str | None
    expire_date: int | None
    member_limit: int | None
    creates_join_request: bool
    is_revoked: bool = False


@dataclass
class SentMessage:
    """A message a bot sent, as recorded for the control API."""

    message_id: int
    chat_id: int
    bot_id: int
    date: int
    text: str
    parse_mode: str | None = None
    reply_markup: Any = None

    def record(self) -> dict[str, Any]:
        """The message as the control API lists it."""
        return {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "bot_id": self.bot_id,
            "date": self.date,
            "text": self.text,
            "parse_mode": self.parse_mode,
            "reply_markup": self.reply_markup,
        }
