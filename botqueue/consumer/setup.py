"""The consumer's options and the process set-up it shares with ``botqueue worker``.

A consumer built without a transport reads the worker's configuration (botqueue.config), so
that a library consumer and a CLI worker on one queue behave alike: the same concurrency,
timeouts and log level. Process-wide state (logging, the redaction of the token) is set
here, when a consumer starts, never at import or in a constructor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from ..logs import configure_logging, register_secret

if TYPE_CHECKING:
    from ..config import Settings


def load_configuration() -> Settings:
    """The worker's settings, from the environment."""
    from ..config import load_settings

    return load_settings()


@dataclass(frozen=True)
class ConsumerOptions:
    """How a consumer receives and holds messages; the literals are the defaults without
    configuration (the settings' defaults are the same, but for the operation timeout)."""

    concurrency: int = 10
    visibility_timeout: float = 30.0
    wait_time_seconds: float = 20.0
    grace_period: float = 30.0
    operation_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")

    @classmethod
    def resolve(
        cls,
        settings: Settings | None,
        *,
        concurrency: int | None = None,
        visibility_timeout: float | None = None,
        wait_time_seconds: float | None = None,
        grace_period: float | None = None,
        operation_timeout: float | None = None,
    ) -> ConsumerOptions:
        """Arguments given, else ``settings`` (when the consumer reads configuration), else
        the defaults."""
        base = (
            cls()
            if settings is None
            else cls(
                settings.botqueue_concurrency,
                settings.botqueue_visibility_timeout,
                settings.botqueue_wait_time,
                settings.botqueue_grace_period,
                settings.botqueue_operation_timeout,
            )
        )
        return cls(
            base.concurrency if concurrency is None else concurrency,
            base.visibility_timeout if visibility_timeout is None else visibility_timeout,
            base.wait_time_seconds if wait_time_seconds is None else wait_time_seconds,
            base.grace_period if grace_period is None else grace_period,
            base.operation_timeout if operation_timeout is None else operation_timeout,
        )


def configure_process(settings: Settings) -> None:
    """Set up what the process shares, as ``botqueue worker`` does: the token is redacted
    from every line, and botqueue's logging runs at BOTQUEUE_LOG_LEVEL unless the
    application configured structlog itself (then its choice stands)."""
    token = settings.telegram_bot_token
    secret = token.get_secret_value() if token is not None else None
    register_secret(secret)
    if not structlog.is_configured():
        configure_logging(settings.botqueue_log_level, token=secret)
    httpx_log = logging.getLogger("httpx")
    if httpx_log.level == logging.NOTSET:
        # httpx logs request URLs, which contain the token, at INFO.
        httpx_log.setLevel(logging.WARNING)
