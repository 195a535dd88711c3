"""The queue's own commands: ``enqueue invite|remove|verify``, ``stats`` and ``setup`` (SQS)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..transports.sqs_names import DEFAULT_MAX_RECEIVE_COUNT, DLQ_NAME, QUEUE_NAME
from .common import (
    metrics_url_option,
    queue_options,
    run_sync,
    settings_from,
    transport_for,
    with_transport,
)

if TYPE_CHECKING:
    from ..producer import BotQueueProducer

INVITE_MODES = ("link", "join_request")
"""operations.INVITE_MODES, written out: ``--help`` must not import pydantic (a test checks
that the two agree)."""


@click.group()
def enqueue() -> None:
    """Put one operation on the queue and print its message id."""


def _enqueue(flags: dict[str, Any], call: Callable[[BotQueueProducer], Any]) -> None:
    from ..producer import BotQueueProducer

    settings = settings_from(**flags)

    async def send() -> str:
        async with BotQueueProducer(transport_for(settings)) as producer:
            message_id: str = await call(producer)
            await producer.transport.aclose()
            return message_id

    click.echo(run_sync(send()))


@enqueue.command("invite")
@queue_options
@click.option("--user-id", type=int, required=True)
@click.option("--channel", required=True, help="@username or numeric chat id.")
@click.option("--subscription-id", required=True)
@click.option("--order-id", required=True)
@click.option("--max-retries", type=int, default=3, show_default=True)
@click.option(
    "--invite-mode",
    type=click.Choice(INVITE_MODES),
    default=None,
    help="link or join_request; default: the worker's TELEGRAM_INVITE_MODE.",
)
def enqueue_invite(
    user_id: int,
    channel: str,
    subscription_id: str,
    order_id: str,
    max_retries: int,
    invite_mode: str | None,
    **flags: Any,
) -> None:
    """Enqueue INVITE_USER."""
    _enqueue(
        flags,
        lambda p: p.enqueue_invite_user(
            user_id, channel, subscription_id, order_id, max_retries, invite_mode=invite_mode
        ),
    )


@enqueue.command("remove")
@queue_options
@click.option("--user-id", type=int, required=True)
@click.option("--channel", required=True, help="@username or numeric chat id.")
@click.option("--subscription-id", required=True)
@click.option("--reason", required=True, help="expiry, refund or cancellation.")
@click.option("--max-retries", type=int, default=3, show_default=True)
def enqueue_remove(
    user_id: int, channel: str, subscription_id: str, reason: Any, max_retries: int, **flags: Any
) -> None:
    """Enqueue REMOVE_USER."""
    _enqueue(
        flags,
        lambda p: p.enqueue_remove_user(user_id, channel, subscription_id, reason, max_retries),
    )


@enqueue.command("verify")
@queue_options
@click.option("--channel", required=True, help="@username or numeric chat id.")
@click.option("--listing-id")
@click.option("--max-retries", type=int, default=3, show_default=True)
def enqueue_verify(channel: str, listing_id: str | None, max_retries: int, **flags: Any) -> None:
    """Enqueue VERIFY_PERMISSIONS."""
    _enqueue(flags, lambda p: p.enqueue_verify_permissions(channel, listing_id, max_retries))


@click.command()
@queue_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object (the default output).")
@click.option("--watch", is_flag=True, help="A live table, refreshed every --interval seconds.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@metrics_url_option(
    "A worker's /metrics URL, for its counters and rates (repeat for several workers)."
)
def stats(
    as_json: bool, watch: bool, interval: float, metrics_urls: tuple[str, ...], **flags: Any
) -> None:
    """Print visible, in-flight and dead-lettered counts and the oldest message's age."""
    settings = settings_from(**flags)
    if watch:
        from .observability import watch_stats

        watch_stats(settings, interval, list(metrics_urls))
        return
    figures: dict[str, Any] = run_sync(with_transport(settings, lambda t: t.stats())).as_dict()
    if metrics_urls:
        from ..observability.stats_view import scrape_summary

        figures["workers"] = run_sync(scrape_summary(list(metrics_urls)))
    click.echo(json.dumps(figures))


@click.command("setup")
@click.option("--queue-name", default=QUEUE_NAME, show_default=True)
@click.option("--dlq-name", default=DLQ_NAME, show_default=True)
@click.option(
    "--max-receive-count",
    type=int,
    default=DEFAULT_MAX_RECEIVE_COUNT,
    show_default=True,
    help="Redrive policy; must exceed every attempt count (maxRetries <= 20).",
)
@click.option("--fix", is_flag=True, help="Set drifted attributes back (FifoQueue cannot change).")
def setup(queue_name: str, dlq_name: str, max_receive_count: int, fix: bool) -> None:
    """Create the SQS FIFO queue and its DLQ as the spec configures them; report drift.

    Existing queues are never changed unless --fix is given; exit 1 when drift remains.
    """
    from ..config import load_settings
    from ..logs import configure_logging
    from ..transports.sqs_setup import run_setup

    configure_logging(load_settings().botqueue_log_level)
    report = run_sync(run_setup(queue_name, dlq_name, max_receive_count, fix))
    for line in report.lines():
        click.echo(line)
    if report.unfixed:
        sys.exit(1)
