"""TelegramBotService: invite, remove and verify on python-telegram-bot's ``Bot``."""

from __future__ import annotations

import contextlib
import datetime as dtm
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from telegram import Bot, ChatMember, ChatMemberAdministrator
from telegram.error import TelegramError

from ..operations import InviteUser, RemoveUser, VerifyPermissions
from ..service import Outcome
from .bot_state import TelegramBotState
from .breaker import BreakerSettings, CircuitBreaker
from .errors import ChatMigratedError, TelegramPermanentError, map_telegram_error
from .limiter import FloodLimiter, RateLimits, limiter_for
from .links import LinkLedger, MemoryLedger
from .membership import Membership
from .request import AnswerRecordingRequest, ErrorAnswer, current_answer

T = TypeVar("T")
log = structlog.get_logger("botqueue.telegram")

RequestObserver = Callable[[str, str, float], None]
"""Called after every Bot API call with (method, status, seconds); status is "ok" or the
error's reason code (a small fixed set, safe as a metric label)."""

OFFICIAL_API = "https://api.telegram.org"
REQUIRED_RIGHTS = ("can_invite_users", "can_restrict_members")
BOT_LOST_CHANNEL = {
    "chat_not_found",
    "bot_kicked",
    "bot_not_member",
    "member_list_inaccessible",
    "channel_private",
    "group_deactivated",
    "group_deleted",
    "not_enough_rights",
}
"""getChatMember answers about the bot itself that mean it cannot administer the chat: a
verification reports them (``verified: false`` and the reason) instead of failing."""


def bot_api_base(url: str | None) -> str:
    """python-telegram-bot's ``base_url`` (ending in /bot) for a server root such as
    https://api.telegram.org or a self-hosted or sandbox server."""
    root = (url or OFFICIAL_API).rstrip("/")
    return root if root.endswith("/bot") else f"{root}/bot"


def chat_ref(channel_id: str) -> int | str:
    """A channel id as the Bot API takes it: an int, or the @username."""
    return channel_id if channel_id.startswith("@") else int(channel_id)


class TelegramBotService:
    """Performs operations against the Bot API; every call goes through the token's limiter."""

    def __init__(
        self,
        token: str,
        *,
        api_url: str | None = None,
        invite_expiry: dtm.timedelta = dtm.timedelta(hours=24),
        limits: RateLimits | None = None,
        request_timeout: float = 10.0,
        bot: Bot | None = None,
        limiter: FloodLimiter | None = None,
        breaker: BreakerSettings | None = None,
        links: LinkLedger | None = None,
    ) -> None:
        # httpx logs request URLs, which contain the token, at INFO: keep it quieter.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._token = token
        self.invite_expiry = invite_expiry
        # Shared by every service of this token in the process unless one is given.
        self.limiter: FloodLimiter = limiter or limiter_for(token, limits)
        request = AnswerRecordingRequest(
            connection_pool_size=64,
            read_timeout=request_timeout,
            write_timeout=request_timeout,
            connect_timeout=request_timeout,
            pool_timeout=5.0,
        )
        self.bot = bot or Bot(token, base_url=bot_api_base(api_url), request=request)
        self.bot_id: int | None = None
        self.calls = 0
        self.request_observers: list[RequestObserver] = []
        self.links: LinkLedger = links or MemoryLedger()
        """Invite links created and not revoked (a removal revokes them; see links.py)."""
        self.membership = Membership(self)
        self.breaker = CircuitBreaker(self.probe, breaker)
        self.bot_state = TelegramBotState(self.limiter, self.breaker)
        """Flood pauses and outages, which the consumer asks before it works."""

    def _observe(self, method: str, status: str, seconds: float) -> None:
        for observer in self.request_observers:
            try:
                observer(method, status, seconds)
            except Exception:  # an observer must never fail a call
                log.exception("request observer raised")

    async def start(self) -> None:
        """Check the token with getMe; an invalid token raises BotUnauthorizedError."""
        # initialize() opens the HTTP client and calls getMe (cached afterwards).
        await self.call("getMe", self.bot.initialize)
        self.bot_id = self.bot.id

    async def probe(self) -> None:
        """getMe, uncached: whether Telegram answers at all (the breaker's probe)."""
        await self.call("getMe", self.bot.get_me)

    async def aclose(self) -> None:
        """Stop probing and close HTTP connections."""
        await self.breaker.aclose()
        await self.links.aclose()
        with contextlib.suppress(TelegramError):
            await self.bot.shutdown()

    async def call(
        self,
        method: str,
        send: Callable[[], Awaitable[T]],
        *,
        scope: str = "",
        chat: str = "",
        max_hold: float | None = None,
    ) -> T:
        """Make one Bot API call through the token's limiter; Telegram's errors come out as
        botqueue errors (with Telegram's description verbatim)."""

        async def mapped() -> T:
            self.calls += 1
            answer = ErrorAnswer()
            recording = current_answer.set(answer)
            started = time.monotonic()
            try:
                result = await send()
            except Exception as error:
                mapped_error = map_telegram_error(error, token=self._token, answer=answer)
                reason = str(mapped_error.detail.get("reason", "error"))
                self._observe(method, reason, time.monotonic() - started)
                raise mapped_error from None
            finally:
                current_answer.reset(recording)
            self._observe(method, "ok", time.monotonic() - started)
            self.breaker.record_success()
            return result

        return await self.limiter.call(method, mapped, scope=scope, chat=chat, max_hold=max_hold)

    async def _migrating(
        self, channel_id: str, work: Callable[[int | str], Awaitable[Outcome]]
    ) -> Outcome:
        try:
            return await work(chat_ref(channel_id))
        except ChatMigratedError as migrated:
            outcome = await work(migrated.new_chat_id)
            return Outcome(
                outcome.status, {**outcome.detail, "migratedToChatId": migrated.new_chat_id}
            )

    async def member(self, chat: int | str, user_id: int) -> ChatMember:
        """getChatMember."""
        return await self.call(
            "getChatMember",
            lambda: self.bot.get_chat_member(chat, user_id),
            scope="channel",
            chat=str(chat),
        )

    # -- the three operations ---------------------------------------------------------------

    async def invite_user(self, op: InviteUser) -> Outcome:
        """Send the user a single-use invite link, unless they are already in the channel."""
        return await self._migrating(op.channel_id, lambda chat: self.membership.invite(op, chat))

    async def remove_user(self, op: RemoveUser) -> Outcome:
        """Take the user out with a plain unbanChatMember, free to rejoin with a new link later;
        done only when Telegram confirms the user is out."""
        return await self._migrating(op.channel_id, lambda chat: self.membership.remove(op, chat))

    async def verify_permissions(self, op: VerifyPermissions) -> Outcome:
        """Report whether the bot administers the channel with the rights botqueue needs."""
        return await self._migrating(op.channel_id, lambda chat: self._verify(op, chat))

    async def _verify(self, op: VerifyPermissions, chat: int | str) -> Outcome:
        if self.bot_id is None:
            await self.start()
        assert self.bot_id is not None
        try:
            member = await self.member(chat, self.bot_id)
        except TelegramPermanentError as error:
            if error.reason not in BOT_LOST_CHANNEL:
                raise
            outcome = _verified(False, list(REQUIRED_RIGHTS), error.reason, op)
            return Outcome(outcome.status, {**outcome.detail, "description": error.message})
        if member.status == ChatMember.OWNER:
            return _verified(True, [], None, op)
        if isinstance(member, ChatMemberAdministrator):
            missing = [right for right in REQUIRED_RIGHTS if not getattr(member, right, False)]
            return _verified(not missing, missing, "missing_rights" if missing else None, op)
        return _verified(False, list(REQUIRED_RIGHTS), "bot_not_admin", op)


def _verified(ok: bool, missing: list[str], reason: str | None, op: VerifyPermissions) -> Outcome:
    detail: dict[str, Any] = {"verified": ok, "missingRights": missing}
    if reason:
        detail["reason"] = reason
    if op.listing_id:
        detail["listingId"] = op.listing_id
    return Outcome("succeeded", detail)
