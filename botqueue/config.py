"""Settings from the spec's environment variables; command-line flags override them."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigurationError

_TOKEN = re.compile(r"^[0-9]+:[A-Za-z0-9_-]+$")
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


class Settings(BaseSettings):
    """Every setting botqueue reads, by its environment variable name."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", env_ignore_empty=True, frozen=True
    )

    bot_operations_queue_url: str | None = None
    """Queue URL: ``sqlite:///path.db`` or an SQS FIFO URL; default ``sqlite:///botqueue.db``."""
    bot_operations_dlq_url: str | None = None
    """DLQ URL; for the embedded queue, default: a second queue in the same file."""
    telegram_bot_token: SecretStr | None = None
    """The bot's token; never logged."""
    telegram_api_base_url: str | None = None
    """Bot API server root (default https://api.telegram.org; or a local/sandbox server)."""
    telegram_invite_link_ttl: float = Field(86400.0, gt=0, le=366 * 86400)
    """Seconds an invite link stays valid."""
    telegram_invite_mode: Literal["link", "join_request"] = "link"
    """How an invite without ``inviteMode`` admits its user: ``link`` (a single-use link) or
    ``join_request`` (a link whose join requests are approved; see docs/telegram.md)."""
    telegram_rate_limit: float = Field(30.0, gt=0)
    """Requests per second per bot token, overall."""
    # -- the token's flood budget, shared by its workers (docs/telegram.md, "Scaling out") --
    telegram_rate_limit_url: str | None = None
    """Where workers share the token's budget: ``redis://host:port/db`` (or rediss://,
    unix://), ``sqlite:///path``, or ``local`` (each process its own); unset: in a file beside
    an embedded queue's, else local."""
    telegram_rate_limit_lease: float = Field(10.0, ge=1, le=300)
    """Seconds a worker that died goes on holding its slots of a shared budget."""
    telegram_rate_limit_fallback_share: float | None = Field(None, gt=0, le=1)
    """Share of TELEGRAM_RATE_LIMIT a worker takes while the shared budget is unreachable;
    unset: 1 / the workers last seen sharing it (1/4 if it was never reached)."""

    @field_validator(
        "telegram_rate_limit_url", "telegram_access_ledger_url", "telegram_invite_ledger_url"
    )
    @classmethod
    def _budget_url(cls, value: str | None) -> str | None:
        parsed = urlparse(value or "")
        if value is None or value == "local" or parsed.scheme in ("redis", "rediss", "unix"):
            return value
        if parsed.scheme == "sqlite" and not parsed.netloc and parsed.path.strip("/"):
            return value
        raise ValueError(
            "must be redis://host:port/db, rediss://…, unix://…, sqlite:///path or local"
        )

    # -- end of the flood budget --
    telegram_access_ledger_url: str | None = None
    """Where the access ledger (entitlements and invite links) is kept; the same values as
    TELEGRAM_INVITE_LEDGER_URL, its older name, which it overrides when both are set."""
    telegram_invite_ledger_url: str | None = None
    """Where invite links are kept until revoked (a removal revokes them): ``redis://host:port/db``
    (``rediss://``, ``unix://``; workers on several hosts), ``sqlite:///path`` or ``local``
    (this process's memory); unset: a file beside an embedded queue's, else the Redis of
    TELEGRAM_RATE_LIMIT_URL if it names one, else local."""
    telegram_user_chat_rate: float = Field(1.0, gt=0)
    """Messages per second to one user."""
    telegram_channel_rate: float = Field(20.0, gt=0)
    """Membership calls per second in one channel."""
    telegram_request_timeout: float = Field(10.0, gt=0, le=300)
    telegram_max_flood_hold: float = Field(5.0, ge=0, le=60)
    """Longest 429 pause waited out inside a call; a longer one pauses the bot as a whole."""
    telegram_breaker_failures: int = Field(3, ge=1, le=1000)
    """Distinct operations failing server-side (5xx, timeouts, refused connections) within
    the window that open the outage circuit breaker (a getMe probe counts as one)."""
    telegram_breaker_window: float = Field(10.0, gt=0, le=600)
    """Seconds over which the breaker counts failures."""
    telegram_breaker_max_probe_interval: float = Field(5.0, ge=1, le=30)
    """Longest wait between getMe probes while Telegram is unavailable (from 1 s, doubling):
    the bot resumes at most this long after Telegram does."""
    aws_region: str = "us-east-1"
    use_localstack: bool = False
    sqs_endpoint: str | None = None
    botqueue_concurrency: int = Field(10, ge=1, le=1000)
    botqueue_visibility_timeout: float = Field(30.0, gt=0, le=43200)
    botqueue_wait_time: float = Field(20.0, ge=0, le=20)
    botqueue_grace_period: float = Field(30.0, ge=0, le=3600)
    botqueue_operation_timeout: float = Field(120.0, gt=0, le=43200)
    """Seconds one attempt of an operation may take; beyond it the attempt fails (retried,
    then dead-lettered), so one hung user cannot hold a worker slot for ever."""
    botqueue_service: str | None = None
    """``module:attribute`` of the BotService the worker runs."""
    botqueue_log_level: Literal["debug", "info", "warning", "error"] = "info"
    botqueue_metrics_port: int | None = Field(None, ge=0, le=65535)
    """Port of /metrics, /healthz and /readyz; unset: no server (0 picks a free port)."""
    botqueue_metrics_host: str = "127.0.0.1"
    """Address the metrics and health server binds (0.0.0.0 to expose it)."""
    botqueue_stats_interval: float = Field(15.0, gt=0, le=3600)
    """Seconds between refreshes of the queue-depth gauges (never one call per scrape)."""
    botqueue_liveness_timeout: float = Field(60.0, gt=0, le=3600)
    """Seconds the receive loop may go without an iteration, beyond one long poll, before
    /healthz fails."""
    bot_operations_outcomes_url: str | None = None
    """Queue URL (any transport) that receives one outcome event per finished operation."""
    botqueue_outcome_hook: str | None = None
    """``module:function`` called with each outcome event (sync or async)."""

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _TOKEN.match(value.get_secret_value()):
            raise ValueError("must look like 123456789:AA... (the token @BotFather gave you)")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, with non-None ``overrides`` (flags) on top.

    Raises:
        ConfigurationError: one line naming the first malformed setting.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "setting"
        value = first.get("input")
        if isinstance(value, str):
            value = _URL_PASSWORD.sub(r"\1***@", value)  # redis://user:secret@host: no secret
        shown = "" if isinstance(value, dict) or "token" in name.lower() else f" (got {value!r})"
        problem = first["msg"].removeprefix("Value error, ")
        raise ConfigurationError(f"{name}: {problem}{shown}") from None
