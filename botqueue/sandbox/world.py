"""The sandbox's world file: its JSON format (validated with pydantic) and the default world."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_TOKEN = "123456789:AAF-sandbox-token-00000000000000000"
"""The default bot's token: a bot id, a colon and 35 characters, like a real one."""

# A real token is the bot's id, a colon and 35 URL-safe characters; aiogram checks the shape.
TOKEN_PATTERN = r"^[1-9][0-9]{0,19}:[A-Za-z0-9_-]{35}$"
"""The shape every world token must have."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BotSpec(_Spec):
    """A bot the sandbox answers for; requests name it by its token."""

    token: str = Field(pattern=TOKEN_PATTERN)
    id: int
    username: str
    first_name: str = "Sandbox Bot"

    @model_validator(mode="after")
    def _id_matches_token(self) -> BotSpec:
        if self.token.partition(":")[0] != str(self.id):
            raise ValueError("a bot's id must be the number before the colon in its token")
        return self


class UserSpec(_Spec):
    """A Telegram user, whether the bot may write to them, and whether the bot can look them up.

    ``known_to_bot: false`` is a user the bot's Bot API server cannot resolve (on Telegram, one
    who never wrote to the bot): getChatMember, banChatMember and unbanChatMember answer
    "user not found" even while the user is in the chat, and getChat and sendMessage answer
    "chat not found", whatever ``started_bot`` says.
    """

    id: int = Field(gt=0)
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None
    started_bot: bool = True
    blocked_bot: bool = False
    deactivated: bool = False
    known_to_bot: bool = True


class RightsSpec(_Spec):
    """The bot's administrator rights in a chat (anything not given is false)."""

    is_anonymous: bool = False
    can_manage_chat: bool = True
    can_delete_messages: bool = False
    can_manage_video_chats: bool = False
    can_restrict_members: bool = False
    can_promote_members: bool = False
    can_change_info: bool = False
    can_invite_users: bool = False
    can_post_stories: bool = False
    can_edit_stories: bool = False
    can_delete_stories: bool = False
    can_send_welcome_messages: bool = False
    can_post_messages: bool = False
    can_edit_messages: bool = False
    can_manage_direct_messages: bool = False
    can_pin_messages: bool = False
    can_manage_topics: bool = False


ChatState = Literal["active", "inaccessible", "deleted"]
"""How Telegram's servers treat a chat: "active"; "inaccessible" (a channel or supergroup the
bot lost access to without its Bot API server noticing: the next call answers CHANNEL_PRIVATE,
later ones "bot was kicked"); "deleted" (a basic group that was deleted)."""


class ChannelSpec(_Spec):
    """A channel (or supergroup, or group) and who is in it.

    A ``username`` makes the chat public: as on Telegram, the bot may then read it (getChat,
    getChatMember, getChatAdministrators) without being a member, and a channel answers
    "member list is inaccessible" to the member questions.
    """

    id: int = Field(lt=0)
    type: Literal["channel", "supergroup", "group"] = "channel"
    title: str
    username: str | None = None
    creator: int | None = None
    bot_rights: RightsSpec | Literal["kicked"] | None = None
    state: ChatState = "active"
    admins: list[int] = []
    members: list[int] = []
    restricted: list[int] = []
    restricted_out: list[int] = []
    """Restricted users who are not in the chat (ChatMemberRestricted with is_member false)."""
    banned: list[int] = []

    @field_validator("username")
    @classmethod
    def _bare_username(cls, value: str | None) -> str | None:
        return value.removeprefix("@") if value else None

    @model_validator(mode="after")
    def _state_fits_type(self) -> ChannelSpec:
        if self.state == "deleted" and self.type != "group":
            raise ValueError(
                f'channel {self.id}: only a basic group can be "deleted"; a channel or '
                'supergroup that is gone is "inaccessible"'
            )
        if self.state == "inaccessible" and self.type == "group":
            raise ValueError(f'channel {self.id}: a basic group that is gone is "deleted"')
        if self.type == "group" and self.username:
            raise ValueError(f"channel {self.id}: a basic group has no username")
        return self

    @model_validator(mode="after")
    def _one_role_each(self) -> ChannelSpec:
        seen: list[int] = [self.creator] if self.creator is not None else []
        seen += [*self.admins, *self.members, *self.restricted, *self.restricted_out]
        seen += self.banned
        if len(seen) != len(set(seen)):
            raise ValueError(f"channel {self.id}: a user is listed in more than one role")
        return self


class WorldSpec(_Spec):
    """Everything the sandbox knows: bots, channels and users."""

    bots: list[BotSpec] = Field(min_length=1)
    channels: list[ChannelSpec] = []
    users: list[UserSpec] = []

    @model_validator(mode="after")
    def _consistent(self) -> WorldSpec:
        for kind, ids in (
            ("bot token", [b.token for b in self.bots]),
            ("bot id", [b.id for b in self.bots]),
            ("channel id", [c.id for c in self.channels]),
            ("user id", [u.id for u in self.users]),
        ):
            if len(ids) != len(set(ids)):
                raise ValueError(f"duplicate {kind}")
        known = {u.id for u in self.users}
        for channel in self.channels:
            people = [*channel.admins, *channel.members, *channel.restricted, *channel.banned]
            people += channel.restricted_out
            if channel.creator is not None:
                people.append(channel.creator)
            unknown = sorted(set(people) - known)
            if unknown:
                raise ValueError(f"channel {channel.id} lists unknown users {unknown}")
        return self


def parse_world(data: Any) -> WorldSpec:
    """Validate a world given as parsed JSON; raises pydantic's ValidationError."""
    return WorldSpec.model_validate(data)


def load_world_file(path: str | Path) -> WorldSpec:
    """Read and validate a world file."""
    return parse_world(json.loads(Path(path).read_text(encoding="utf-8")))


_FULL_RIGHTS = {
    "can_manage_chat": True,
    "can_invite_users": True,
    "can_restrict_members": True,
    "can_post_messages": True,
    "can_edit_messages": True,
    "can_delete_messages": True,
}

DEFAULT_WORLD: dict[str, Any] = {
    "bots": [
        {
            "token": DEFAULT_TOKEN,
            "id": 123456789,
            "username": "sandbox_bot",
            "first_name": "Sandbox Bot",
        },
    ],
    "channels": [
        {
            "id": -1001000000001,
            "username": "premium_signals",
            "title": "Premium Signals",
            "type": "channel",
            "creator": 1,
            "bot_rights": _FULL_RIGHTS,
            "admins": [2],
            "members": [1001, 1002, 1003],
            "banned": [1009],
        },
        {
            "id": -1001000000002,
            "title": "VIP Lounge",
            "type": "supergroup",
            "creator": 1,
            "bot_rights": {"can_manage_chat": True, "can_invite_users": True},
            "members": [1001],
        },
        {
            "id": -1001000000003,
            "title": "Bot Not Added",
            "type": "channel",
            "creator": 2,
            "bot_rights": None,
            "members": [1002],
        },
        {
            "id": -1001000000004,
            "title": "Bot Was Kicked",
            "type": "channel",
            "creator": 2,
            "bot_rights": "kicked",
            "members": [1003],
        },
        {
            "id": -1001000000005,
            "username": "open_no_bot",
            "title": "Public, Bot Not Added",
            "type": "channel",
            "creator": 2,
            "bot_rights": None,
            "members": [1002],
        },
    ],
    "users": [
        {"id": 1, "first_name": "Olivia", "username": "olivia_owner"},
        {"id": 2, "first_name": "Adam", "username": "adam_admin"},
        {"id": 1001, "first_name": "Ann", "username": "ann"},
        {"id": 1002, "first_name": "Ben", "last_name": "Brown", "username": "ben"},
        {"id": 1003, "first_name": "Cara", "language_code": "de"},
        {"id": 1004, "first_name": "Dan", "username": "dan"},
        {"id": 1005, "first_name": "Eve", "username": "eve", "started_bot": False},
        {"id": 1006, "first_name": "Finn", "username": "finn", "blocked_bot": True},
        {"id": 1007, "first_name": "Gus", "deactivated": True},
        {"id": 1008, "first_name": "Hana", "username": "hana"},
        {"id": 1009, "first_name": "Ivan", "username": "ivan"},
        {"id": 1010, "first_name": "Jo", "username": "jo"},
    ],
}
"""The world used when none is given: one bot, five channels, a dozen users in various states.

premium_signals (-1001000000001): the bot is an administrator who may invite and restrict;
Ann, Ben and Cara are members, Ivan is banned. VIP Lounge (-1001000000002, private
supergroup): the bot may invite but not restrict. -1001000000003 (private): the bot is not a
member. -1001000000004: the bot was kicked. open_no_bot (-1001000000005, public): the bot is
not a member, so it may read the chat but not its members. Eve never started the bot, Finn
blocked it, Gus's account is deactivated; Dan, Hana and Jo are free to be invited.
"""
