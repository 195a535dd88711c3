"""The Telegram service's configuration, read from the worker's settings in one place.

``botqueue worker``, the Lambda handler and ``TelegramBotService()`` in an application all
build the service from here, so that they share the token's flood budget and invite-link
ledger (files beside an embedded queue's, or Redis) and keep the promises of no 429 and one
valid link per user when they work one queue together.
"""

from __future__ import annotations

import datetime as dtm
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from .breaker import BreakerSettings
from .flood import open_budget
from .limiter import FloodLimiter, RateLimits
from .links import LinkLedger, ledger_url, open_ledger

if TYPE_CHECKING:
    from ..config import Settings
    from ..operations import InviteMode


@dataclass
class ServiceConfig:
    """Everything TelegramBotService takes, as the TELEGRAM_* settings name it."""

    token: str
    api_url: str | None
    invite_expiry: dtm.timedelta
    invite_mode: InviteMode
    """How an invite without ``inviteMode`` admits its user (TELEGRAM_INVITE_MODE)."""
    request_timeout: float
    limits: RateLimits
    breaker: BreakerSettings
    limiter: FloodLimiter
    """Carries the token's budget, shared with every worker of the token."""
    links: LinkLedger


def service_config(settings: Settings | None = None) -> ServiceConfig:
    """The service's configuration from ``settings`` (default: the environment).

    Raises:
        ConfigurationError: TELEGRAM_BOT_TOKEN is unset, or a setting is malformed.
    """
    if settings is None:
        from ..config import load_settings

        settings = load_settings()
    if settings.telegram_bot_token is None:
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is not set")
    token = settings.telegram_bot_token.get_secret_value()
    limits = RateLimits(
        overall=settings.telegram_rate_limit,
        per_user_chat=settings.telegram_user_chat_rate,
        per_channel=settings.telegram_channel_rate,
        max_hold=settings.telegram_max_flood_hold,
    )
    # Telegram limits the token, not the process: every worker of it draws on one budget.
    budget = open_budget(
        settings.telegram_rate_limit,
        token=token,
        url=settings.telegram_rate_limit_url,
        queue_url=settings.bot_operations_queue_url,
        lease=settings.telegram_rate_limit_lease,
        fallback_share=settings.telegram_rate_limit_fallback_share,
    )
    return ServiceConfig(
        token=token,
        api_url=settings.telegram_api_base_url,
        invite_expiry=dtm.timedelta(seconds=settings.telegram_invite_link_ttl),
        invite_mode=settings.telegram_invite_mode,
        request_timeout=settings.telegram_request_timeout,
        limits=limits,
        breaker=BreakerSettings(
            failures=settings.telegram_breaker_failures,
            window=settings.telegram_breaker_window,
            probe_max=settings.telegram_breaker_max_probe_interval,
        ),
        limiter=FloodLimiter(limits, budget),
        # Outlives a killed worker when it is a file (the embedded queue's default) or, with
        # SQS, the flood budget's Redis: workers sharing a budget share their links too.
        links=open_ledger(
            token,
            url=ledger_url(settings),
            queue_url=settings.bot_operations_queue_url,
            rate_limit_url=settings.telegram_rate_limit_url,
        ),
    )
