"""Invite and remove: what the Bot API is asked, and when Telegram's answer means "done".

Two rules shape both flows. A removal is done only when Telegram confirms it: getChatMember
says the user is out ("left" or "kicked"), or the plain unban of a member succeeded, or (when
Telegram will not describe the user) the ban succeeded; Telegram answers the "user not found"
family (and others) for users who are in the chat, so such an answer is never taken as "not a
member". An invite leaves at most one valid link: a link whose delivery is not confirmed is
revoked before the operation is retried, and every failure of an invite that created a link
carries the link and whether it is still valid.

An invite in ``join_request`` mode sends a link that creates join requests instead (no
member_limit: Telegram refuses the two together). Such a link admits nobody by itself, so a
user who cannot get the bot's message is no failure: the outcome says ``delivered: false`` and
carries the link, which stays valid for the application to show on its own page.

Every link created is kept in the service's invite-link ledger (links.py) until it is revoked:
an invite first revokes the user's earlier links in the chat (a worker killed after sending
one, before the message was deleted, would otherwise leave two valid), and a removal revokes
them all (a single-use link frees its place when its user is removed: it would let them back).

The same ledger keeps who is entitled (the access ledger): an invite performed (the link sent,
or the user already in) grants access, a removal performed (the user confirmed out) revokes
it. Here, not in the service, because only the flow knows when an operation was performed; a
failed operation changes nothing, and a redelivered one records the same again.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import structlog
from telegram import Bot, ChatMember

from ..errors import OperationError, PermanentError
from ..operations import InviteMode, InviteUser, RemoveUser
from ..service import Outcome
from .errors import TelegramPermanentError
from .links import LinkLedger

T = TypeVar("T")
log = structlog.get_logger("botqueue.telegram")

IN_CHANNEL = {ChatMember.MEMBER, ChatMember.ADMINISTRATOR, ChatMember.OWNER}
GONE = {ChatMember.LEFT, ChatMember.BANNED}
"""The only getChatMember statuses that confirm a user is out of the chat."""
USER_UNRESOLVED = {
    "user_not_found",
    "member_not_found",
    "participant_id_invalid",
    "user_id_invalid",
}
"""getChatMember answers that say nothing about membership: the user may well be in."""
LINK_GONE = {"invite_link_expired"}
"""revokeChatInviteLink answers meaning the chat no longer has the link: nothing to revoke."""
UNDELIVERABLE = {
    "bot_blocked",
    "bot_not_started",
    "user_deactivated",
    "user_not_found",
    "chat_not_found",
    "recipient_is_bot",
    "peer_id_invalid",
    "user_banned_in_channel",
}
"""sendMessage answers meaning the user cannot get the bot's message; the link is kept."""
KICK_SERVER_HOLD = 1.0
"""Least seconds between Telegram counting a plain unban of a member and its answer: TDLib
(tdlib/td, DialogParticipantManager.cpp, set_channel_participant_status_impl) bans the member
(channels.editBanned), waits ``SleepActor`` 1.0 s, then sets Left, and only then answers. A
faster answer (the user had left meanwhile) gets no such credit (flood/rule.py)."""
REVOKE_MAX_HOLD = 90.0
"""Longest flood pause a revocation waits out (an unrevoked link is a second valid link);
below the worker's default operation timeout of 120 s, which would cut the wait short."""


def invite_link_name(subscription_id: str) -> str:
    """A link name derived from the subscription id, at most 32 characters (Telegram's limit)."""
    if len(subscription_id) <= 32:
        return subscription_id
    digest = hashlib.sha256(subscription_id.encode()).hexdigest()[:8]
    return f"{subscription_id[:23]}~{digest}"


def _in_channel(member: ChatMember) -> bool:
    restricted_in = member.status == ChatMember.RESTRICTED and bool(
        getattr(member, "is_member", False)
    )
    return member.status in IN_CHANNEL or restricted_in


class BotApi(Protocol):
    """What the flows need of the service: its Bot, limited calls, its ledger and link TTL.

    Declared here, so that this module does not import the service (which imports it).
    """

    bot: Bot
    links: LinkLedger
    invite_expiry: dtm.timedelta
    invite_mode: InviteMode

    async def call(
        self,
        method: str,
        send: Callable[[], Awaitable[T]],
        *,
        scope: str = "",
        chat: str = "",
        max_hold: float | None = None,
        server_hold: float = 0.0,
    ) -> T:
        """One Bot API call through the token's limiter, errors mapped."""
        ...

    async def member(self, chat: int | str, user_id: int) -> ChatMember:
        """getChatMember."""
        ...


class Membership:
    """The invite and remove flows of one TelegramBotService."""

    def __init__(self, service: BotApi) -> None:
        self.service = service

    async def _channel_call(
        self,
        method: str,
        chat: int | str,
        send: Callable[[], Awaitable[T]],
        *,
        server_hold: float = 0.0,
    ) -> T:
        return await self.service.call(
            method, send, scope="channel", chat=str(chat), server_hold=server_hold
        )

    async def _ban(self, chat: int | str, user_id: int) -> None:
        bot = self.service.bot
        await self._channel_call("banChatMember", chat, lambda: bot.ban_chat_member(chat, user_id))

    async def _kick(self, chat: int | str, user_id: int) -> None:
        # A plain unbanChatMember "guarantees that after the call the user is not a member of
        # the chat, but will be able to join it" (Bot API): the Bot API server sets the status
        # to Left, which TDLib does by a 60 s ban, then Left a second later (docs/telegram.md).
        # The answer comes after that second: the flood window is told (KICK_SERVER_HOLD).
        bot = self.service.bot
        await self._channel_call(
            "unbanChatMember",
            chat,
            lambda: bot.unban_chat_member(chat, user_id),
            server_hold=KICK_SERVER_HOLD,
        )

    async def _unban_if_banned(self, chat: int | str, user_id: int) -> None:
        bot = self.service.bot
        await self._channel_call(
            "unbanChatMember",
            chat,
            lambda: bot.unban_chat_member(chat, user_id, only_if_banned=True),
        )

    # -- remove -----------------------------------------------------------------------------

    async def remove(self, op: RemoveUser, chat: int | str) -> Outcome:
        """Take a member out with one plain unban; done only when Telegram confirms it.

        Two calls for a member (getChatMember, unbanChatMember), one for a user already out;
        an administrator or the owner is refused, and a user Telegram will not describe is
        banned (issue 9), since only the ban's success confirms they are out.
        """
        # First, so that no link of theirs lets the user back in once they are out.
        await self.revoke_held(op, chat)
        try:
            member = await self.service.member(chat, op.user_id)
        except TelegramPermanentError as lookup:
            return await self._remove_unconfirmed(op, chat, lookup)
        if member.status in GONE:
            await self.service.links.revoke(str(chat), op.user_id, op.subscription_id)
            return Outcome("noop", {"memberStatus": member.status})
        if member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER):
            owner = member.status == ChatMember.OWNER
            raise PermanentError(
                f"cannot remove the channel's {member.status}: demote them first",
                detail={"reason": "user_is_owner" if owner else "user_is_admin"},
            )
        # A member, or a restricted user in or out of the chat: the plain unban leaves them
        # "left", restrictions lifted, free to come back with a new link. Never an admin's ban:
        # a "kicked" user returned above.
        await self._kick(chat, op.user_id)
        await self.service.links.revoke(str(chat), op.user_id, op.subscription_id)
        return Outcome("succeeded", {"reason": op.reason, "memberStatus": member.status})

    async def _remove_unconfirmed(
        self, op: RemoveUser, chat: int | str, lookup: TelegramPermanentError
    ) -> Outcome:
        # Telegram would not say whether the user is in: the ban is the only confirmation.
        # Without a status the user may already be banned by the channel's admins, so no
        # unban follows: they stay banned, and a later invite unbans them (only_if_banned).
        try:
            await self._ban(chat, op.user_id)
        except TelegramPermanentError as refused:
            raise TelegramPermanentError(
                f"removal not confirmed: getChatMember answered {lookup.message!r} and "
                f"banChatMember answered {refused.message!r}",
                reason=refused.reason,
                detail={"memberLookupError": lookup.message, "memberLookupReason": lookup.reason},
            ) from None
        await self.service.links.revoke(str(chat), op.user_id, op.subscription_id)
        return Outcome(
            "succeeded",
            {"reason": op.reason, "memberStatus": "unknown", "memberLookupError": lookup.message},
        )

    # -- invite -----------------------------------------------------------------------------

    async def invite(self, op: InviteUser, chat: int | str) -> Outcome:
        """Send the user an invite link, unless they are already in the channel.

        Single-use, or (``join_request`` mode) one that makes a join request to approve.
        """
        # An earlier delivery's link (or a member's unused one) must not stay valid beside it.
        await self.revoke_held(op, chat)
        try:
            member: ChatMember | None = await self.service.member(chat, op.user_id)
        except TelegramPermanentError as error:
            if error.reason not in USER_UNRESOLVED:
                raise
            member = None
        if member is not None and _in_channel(member):
            await self.service.links.grant(str(chat), op.user_id, op.subscription_id)
            return Outcome("noop", {"memberStatus": member.status})
        if member is None:
            await self._unban_unresolved(op, chat)
        elif member.status == ChatMember.BANNED:
            await self._unban_if_banned(chat, op.user_id)
        return await self._send_link(op, chat)

    async def _unban_unresolved(self, op: InviteUser, chat: int | str) -> None:
        # A user Telegram will not describe may be banned (an unconfirmed removal leaves them
        # so); only_if_banned makes this harmless otherwise. Its refusal is no reason to stop:
        # the link is what the subscriber paid for.
        try:
            await self._unban_if_banned(chat, op.user_id)
        except TelegramPermanentError as error:
            log.info(
                "could not clear a possible ban before inviting",
                error=error.message,
                channelId=op.channel_id,
                userId=op.user_id,
            )

    async def _send_link(self, op: InviteUser, chat: int | str) -> Outcome:
        service = self.service
        expires = dtm.datetime.now(dtm.UTC) + service.invite_expiry
        name = invite_link_name(op.subscription_id)
        join_request = (op.invite_mode or service.invite_mode) == "join_request"
        # Telegram refuses member_limit beside creates_join_request; approval limits it instead.
        limit: dict[str, Any] = (
            {"creates_join_request": True} if join_request else {"member_limit": 1}
        )
        link = await self._channel_call(
            "createChatInviteLink",
            chat,
            lambda: service.bot.create_chat_invite_link(
                chat, expire_date=expires, name=name, **limit
            ),
        )
        await service.links.record(str(chat), op.user_id, link.invite_link, expires.timestamp())
        detail: dict[str, Any] = {
            "inviteLink": link.invite_link,
            "inviteLinkName": name,
            "expiresAt": expires.isoformat(timespec="seconds"),
        }
        if join_request:
            detail["inviteMode"] = "join_request"
        text = _invite_text(link.invite_link)
        try:
            message = await service.call(
                "sendMessage",
                lambda: service.bot.send_message(op.user_id, text),
                scope="user",
                chat=str(op.user_id),
            )
        except TelegramPermanentError as error:
            if error.reason in UNDELIVERABLE and join_request:
                # The link admits nobody by itself: the application shows it instead. The
                # invite is performed, so the user is entitled (approval will read this).
                await service.links.grant(str(chat), op.user_id, op.subscription_id)
                return Outcome(
                    "succeeded",
                    {
                        **detail,
                        "delivered": False,
                        "deliveryError": error.message,
                        "deliveryReason": error.reason,
                    },
                )
            if error.reason in UNDELIVERABLE:
                raise TelegramPermanentError(
                    f"invite link created but not delivered: {error.message}",
                    reason=error.reason,
                    detail={**detail, "linkValid": True},
                ) from None
            valid = not await self._revoke(op, chat, link.invite_link, name, error)
            raise TelegramPermanentError(
                f"invite link not delivered: {error.message}",
                reason=error.reason,
                detail={**detail, "linkValid": valid},
            ) from None
        except OperationError as error:
            # Not confirmed either way (a 502, a timeout, a long flood pause): the retry
            # creates a new link, so this one must not stay valid beside it.
            valid = not await self._revoke(op, chat, link.invite_link, name, error)
            error.detail.update(detail, linkValid=valid)
            raise
        if join_request:
            detail["delivered"] = True
        # Performed: the user is entitled (the access ledger; a redelivery grants again).
        await service.links.grant(str(chat), op.user_id, op.subscription_id)
        return Outcome("succeeded", {**detail, "messageId": message.message_id})

    async def _revoke_call(self, chat: int | str, url: str) -> None:
        bot = self.service.bot
        await self.service.call(
            "revokeChatInviteLink",
            lambda: bot.revoke_chat_invite_link(chat, url),
            scope="channel",
            chat=str(chat),
            max_hold=REVOKE_MAX_HOLD,
        )
        await self.service.links.forget(url)

    async def revoke_held(self, op: InviteUser | RemoveUser, chat: int | str) -> None:
        """Revoke every link the ledger holds for the user in the chat.

        A transient failure goes up (the operation is retried); a refusal is logged and the
        link kept, so that a later operation tries again, and this one goes on.
        """
        for url in await self.service.links.held(str(chat), op.user_id):
            try:
                await self._revoke_call(chat, url)
            except TelegramPermanentError as error:
                if error.reason in LINK_GONE:
                    await self.service.links.forget(url)
                    continue
                log.warning(
                    "could not revoke an earlier invite link; it stays valid until it expires",
                    channelId=op.channel_id,
                    userId=op.user_id,
                    subscriptionId=op.subscription_id,
                    error=error.message,
                )

    async def _revoke(
        self, op: InviteUser, chat: int | str, url: str, name: str, cause: OperationError
    ) -> bool:
        """Revoke an undelivered link; True when Telegram confirmed it."""
        try:
            await self._revoke_call(chat, url)
        except asyncio.CancelledError:
            # Shutdown or the operation timeout: say which link stays valid, then stop.
            log.warning(
                "revocation of an undelivered invite link interrupted; it stays valid",
                linkName=name,
                channelId=op.channel_id,
                userId=op.user_id,
                subscriptionId=op.subscription_id,
            )
            raise
        except OperationError as error:
            if isinstance(error, TelegramPermanentError) and error.reason in LINK_GONE:
                # The chat no longer has the link (it expired): as good as revoked.
                await self.service.links.forget(url)
                return True
            log.warning(
                "could not revoke an undelivered invite link; it stays valid until it expires",
                linkName=name,
                channelId=op.channel_id,
                userId=op.user_id,
                subscriptionId=op.subscription_id,
                deliveryError=cause.message,
                error=error.message,
            )
            return False
        return True


def _invite_text(link: str) -> str:
    return f"Your subscription is active. Join the channel with this personal link:\n{link}"
