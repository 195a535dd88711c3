"""What the commands share: queue options, settings, running async work.

Settings, logging and transports are imported when a command asks for them, not here: this
module is imported by ``botqueue --help`` too.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..config import Settings
    from ..transports import Transport

F = TypeVar("F", bound=Callable[..., Any])


def _metrics_urls(
    _ctx: click.Context, param: click.Parameter, urls: tuple[str, ...]
) -> tuple[str, ...]:
    from urllib.parse import urlparse

    for url in urls:
        parts = urlparse(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise click.BadParameter(f"{url!r} is not an http(s):// URL", param=param)
    return urls


def metrics_url_option(help: str) -> Callable[[F], F]:
    """``--metrics-url`` (repeatable): workers' /metrics URLs, refused unless http(s)."""
    return click.option(
        "--metrics-url", "metrics_urls", multiple=True, callback=_metrics_urls, help=help
    )


def queue_options(command: F) -> F:
    """Add --queue-url and --dlq-url to a command."""
    command = click.option("--dlq-url", help="DLQ URL [env BOT_OPERATIONS_DLQ_URL].")(command)
    return click.option(
        "--queue-url",
        help="Queue URL [env BOT_OPERATIONS_QUEUE_URL; default sqlite:///botqueue.db].",
    )(command)


def settings_from(**flags: Any) -> Settings:
    """Settings from the environment with the command's flags on top; sets up logging."""
    from ..config import load_settings
    from ..logs import configure_logging

    settings = load_settings(
        bot_operations_queue_url=flags.pop("queue_url", None),
        bot_operations_dlq_url=flags.pop("dlq_url", None),
        **flags,
    )
    token = settings.telegram_bot_token
    configure_logging(
        settings.botqueue_log_level, token=token.get_secret_value() if token else None
    )
    return settings


def transport_for(settings: Settings) -> Transport:
    """The transport the settings name (the same choice the library makes without a URL)."""
    from ..transports.configured import configured_transport

    return configured_transport(settings=settings)


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from a command."""
    import asyncio

    return asyncio.run(coro)


async def with_transport(settings: Settings, work: Callable[[Transport], Any]) -> Any:
    """Run ``work(transport)`` and close the transport."""
    transport = transport_for(settings)
    try:
        return await work(transport)
    finally:
        await transport.aclose()
