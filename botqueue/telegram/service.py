"""TelegramBotService: invite, remove and verify on python-telegram-bot's ``Bot``."""

from __future__ import annotations

import contextlib
import datetime as dtm
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from telegram import Bot, ChatMember, ChatMemberAdministrator
from telegram.error import TelegramError

from ..logs import register_secret
from ..operations import InviteMode, InviteUser, RemoveUser, VerifyPermissions
from ..service import FloodCounters, Outcome, RequestObserver
from .bot_state import TelegramBotState
from .breaker import BreakerSettings, CircuitBreaker
from .errors import ChatMigratedError, TelegramPermanentError, map_telegram_error
from .limiter import FloodLimiter, RateLimits
from .links import LinkLedger, MemoryLedger
from .membership import Membership
from .request import AnswerRecordingRequest, ErrorAnswer, current_answer
from .settings import service_config

if TYPE_CHECKING:
    from ..config import Settings

T = TypeVar("T")
log = structlog.get_logger("botqueue.telegram")

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
    """Performs operations against the Bot API; every call goes through the token's limiter.

    ``TelegramBotService()`` reads the worker's settings (TELEGRAM_BOT_TOKEN and the other
    TELEGRAM_* variables; see from_settings): the token's shared flood budget and invite-link
    ledger included. Given a ``token``, it is configured by its arguments alone: a limiter and
    a ledger of its own unless ``limiter`` and ``links`` are passed.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        api_url: str | None = None,
        invite_expiry: dtm.timedelta | None = None,
        invite_mode: InviteMode | None = None,
        limits: RateLimits | None = None,
        request_timeout: float | None = None,
        bot: Bot | None = None,
        limiter: FloodLimiter | None = None,
        breaker: BreakerSettings | None = None,
        links: LinkLedger | None = None,
    ) -> None:
        # A limiter made here is this service's to close; one passed in is its owner's.
        self._owns_limiter = limiter is None
        if token is None:
            # No token: everything not passed comes from the settings, as for the worker.
            config = service_config()
            token, api_url = config.token, api_url or config.api_url
            invite_expiry = invite_expiry or config.invite_expiry
            invite_mode = invite_mode or config.invite_mode
            request_timeout = request_timeout or config.request_timeout
            limits, breaker = limits or config.limits, breaker or config.breaker
            limiter, links = limiter or config.limiter, links or config.links
        self._token = token
        self.invite_expiry = invite_expiry or dtm.timedelta(hours=24)
        self.invite_mode: InviteMode = invite_mode or "link"
        """How an invite without ``inviteMode`` admits its user."""
        request_timeout = request_timeout or 10.0
        self.limiter: FloodLimiter = limiter or FloodLimiter(limits)
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
        self._observers: list[RequestObserver] = []
        self._closed = False
        self.links: LinkLedger = links or MemoryLedger()
        """Invite links created and not revoked (a removal revokes them; see links.py)."""
        self.membership = Membership(self)
        self.breaker = CircuitBreaker(self.probe, breaker)
        self.bot_state = TelegramBotState(self.limiter, self.breaker)
        """Flood pauses and outages, which the consumer asks before it works."""

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> TelegramBotService:
        """The service as ``botqueue worker`` builds it from ``settings`` (default: the
        environment): token, API URL, limits, breaker, the token's shared flood budget and its
        invite-link ledger (files beside an embedded queue's, or Redis).

        Raises:
            ConfigurationError: TELEGRAM_BOT_TOKEN is unset, or a setting is malformed.
        """
        config = service_config(settings)
        service = cls(
            config.token,
            api_url=config.api_url,
            invite_expiry=config.invite_expiry,
            invite_mode=config.invite_mode,
            request_timeout=config.request_timeout,
            limits=config.limits,
            breaker=config.breaker,
            limiter=config.limiter,
            links=config.links,
        )
        # The limiter carries the shared budget, built for this service alone: it closes it.
        service._owns_limiter = True
        return service

    def add_request_observer(self, observer: RequestObserver) -> None:
        """Call ``observer(method, status, seconds)`` after every Bot API call."""
        self._observers.append(observer)

    @property
    def flood_stats(self) -> FloodCounters:
        """The limiter's flood-control counters."""
        return self.limiter.stats

    def _observe(self, method: str, status: str, seconds: float) -> None:
        for observer in self._observers:
            try:
                observer(method, status, seconds)
            except Exception:  # an observer must never fail a call
                log.exception("request observer raised")

    async def start(self) -> None:
        """Check the token with getMe; an invalid token raises BotUnauthorizedError."""
        # From here on the token is redacted from botqueue's log lines and dead letters.
        register_secret(self._token)
        # initialize() opens the HTTP client and calls getMe (cached afterwards).
        await self.call("getMe", self.bot.initialize)
        self.bot_id = self.bot.id

    async def probe(self) -> None:
        """getMe, uncached: whether Telegram answers at all (the breaker's probe)."""
        await self.call("getMe", self.bot.get_me)

    async def aclose(self) -> None:
        """Stop probing, close HTTP connections, the ledger and the limiter it owns (giving a
        shared budget's lease back). A second call does nothing: a consumer closes the service
        it started, and its owner may too."""
        if self._closed:
            return
        self._closed = True
        await self.breaker.aclose()
        await self.links.aclose()
        with contextlib.suppress(TelegramError):
            await self.bot.shutdown()
        if self._owns_limiter:
            await self.limiter.aclose()

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
        """Make one Bot API call through the token's limiter; Telegram's errors come out as
        botqueue errors (with Telegram's description verbatim). ``max_hold`` and
        ``server_hold``: see ``FloodLimiter.call``."""

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

        return await self.limiter.call(
            method, mapped, scope=scope, chat=chat, max_hold=max_hold, server_hold=server_hold
        )

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
