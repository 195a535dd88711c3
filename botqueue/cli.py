"""The ``botqueue`` command: parses arguments and delegates. Exit codes: 0 ok, 1 failure,
2 usage or configuration error."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .cli_common import queue_options, run_sync, settings_from, transport_for, with_transport
from .cli_dlq import dlq
from .config import Settings
from .errors import BotQueueError, ConfigurationError, OperationValidationError
from .logs import configure_logging, flush_logs, redact_secrets
from .observability.cli_commands import add_observability_commands
from .producer import BotQueueProducer
from .sandbox.cli_command import add_sandbox_command
from .transports.sqs_cli import add_sqs_commands


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="botqueue")
def cli() -> None:
    """botqueue: Telegram membership operations on a durable FIFO queue."""


@cli.command()
@queue_options
@click.option(
    "--concurrency", type=int, help="Messages held at once [env BOTQUEUE_CONCURRENCY; 10]."
)
@click.option(
    "--visibility-timeout", type=float, help="Seconds [env BOTQUEUE_VISIBILITY_TIMEOUT; 30]."
)
@click.option(
    "--wait-time", type=float, help="Long-poll seconds, 0-20 [env BOTQUEUE_WAIT_TIME; 20]."
)
@click.option(
    "--grace-period",
    type=float,
    help="Seconds running operations get at shutdown [env BOTQUEUE_GRACE_PERIOD; 30].",
)
@click.option("--service", help="module:attribute of the BotService [env BOTQUEUE_SERVICE].")
@click.option(
    "--drain", is_flag=True, help="Exit 0 once the queue is empty and nothing is in flight."
)
@click.option(
    "--drop-permanent",
    is_flag=True,
    help="Delete permanent failures instead of dead-lettering them (the spec's way).",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option(
    "--metrics-port",
    type=int,
    help="Serve /metrics, /healthz, /readyz on this port [env BOTQUEUE_METRICS_PORT; off].",
)
@click.option(
    "--metrics-host", help="Address to bind them to [env BOTQUEUE_METRICS_HOST; 127.0.0.1]."
)
@click.option(
    "--outcomes-url",
    help="Queue URL for one outcome event per operation [env BOT_OPERATIONS_OUTCOMES_URL].",
)
@click.option(
    "--outcome-hook",
    help="module:function called with each outcome event [env BOTQUEUE_OUTCOME_HOOK].",
)
@click.option(
    "--reload",
    is_flag=True,
    help="Development: restart the worker when a .py file here or in botqueue changes.",
)
def worker(drain: bool, drop_permanent: bool, reload: bool, **flags: Any) -> None:
    """Consume operations until SIGTERM/SIGINT (graceful: finishes or hands back)."""
    from .observability.cli_commands import child_arguments
    from .worker import run_worker, service_from_settings

    child_argv = child_arguments(click.get_current_context(), frozenset({"reload"}))
    settings = settings_from(
        botqueue_concurrency=flags.pop("concurrency"),
        botqueue_visibility_timeout=flags.pop("visibility_timeout"),
        botqueue_wait_time=flags.pop("wait_time"),
        botqueue_grace_period=flags.pop("grace_period"),
        botqueue_service=flags.pop("service"),
        botqueue_log_level=flags.pop("log_level"),
        botqueue_metrics_port=flags.pop("metrics_port"),
        botqueue_metrics_host=flags.pop("metrics_host"),
        bot_operations_outcomes_url=flags.pop("outcomes_url"),
        botqueue_outcome_hook=flags.pop("outcome_hook"),
        **flags,
    )
    if reload:
        from .observability.reload import run_with_reload

        sys.exit(run_with_reload(child_argv, grace_period=settings.botqueue_grace_period))
    service = service_from_settings(settings)
    run_sync(run_worker(settings, service, drain=drain, drop_permanent=drop_permanent))


@cli.group()
def enqueue() -> None:
    """Put one operation on the queue and print its message id."""


def _enqueue(flags: dict[str, Any], call: Callable[[BotQueueProducer], Any]) -> None:
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
def enqueue_invite(
    user_id: int, channel: str, subscription_id: str, order_id: str, max_retries: int, **flags: Any
) -> None:
    """Enqueue INVITE_USER."""
    _enqueue(
        flags,
        lambda p: p.enqueue_invite_user(user_id, channel, subscription_id, order_id, max_retries),
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


@cli.command()
@queue_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object (the default output).")
@click.option("--watch", is_flag=True, help="A live table, refreshed every --interval seconds.")
@click.option("--interval", type=click.FloatRange(min=0.1), default=2.0, show_default=True)
@click.option(
    "--metrics-url",
    "metrics_urls",
    multiple=True,
    help="A worker's /metrics URL, for its counters and rates (repeat for several workers).",
)
def stats(
    as_json: bool, watch: bool, interval: float, metrics_urls: tuple[str, ...], **flags: Any
) -> None:
    """Print visible, in-flight and dead-lettered counts and the oldest message's age."""
    settings = settings_from(**flags)
    if watch:
        _watch_stats(settings, interval, list(metrics_urls))
        return
    figures: dict[str, Any] = run_sync(with_transport(settings, lambda t: t.stats())).as_dict()
    if metrics_urls:
        figures["workers"] = run_sync(_scrape_workers(list(metrics_urls)))
    click.echo(json.dumps(figures))


def _watch_stats(settings: Settings, interval: float, metrics_urls: list[str]) -> None:
    from .observability.cli_commands import outcomes_transport
    from .observability.stats_view import watch

    async def run() -> None:
        transport = transport_for(settings)
        outcomes = outcomes_transport(settings.bot_operations_outcomes_url)
        try:
            await watch(transport, outcomes, metrics_urls, interval=interval)
        finally:
            await transport.aclose()
            if outcomes is not None:
                await outcomes.aclose()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how --watch ends
        run_sync(run())


async def _scrape_workers(urls: list[str]) -> dict[str, float]:
    import aiohttp

    from .observability.stats_view import scrape, worker_summary

    async with aiohttp.ClientSession() as session:
        return worker_summary(await scrape(session, urls))


cli.add_command(dlq)


@cli.command()
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Keep the demo's queue in this file (default: a temporary one).",
)
def demo(db: Path | None) -> None:
    """Run the pipeline end to end on the embedded queue with a simulated bot."""
    from .demo import main as demo_main

    configure_logging("warning")
    demo_main(db)


add_observability_commands(cli)


add_sandbox_command(cli)
add_sqs_commands(cli)


def _handles_errors(entry: Callable[[], Any]) -> Callable[[], None]:
    @functools.wraps(entry)
    def wrapper() -> None:
        try:
            entry()
        except ConfigurationError as error:
            _fail(f"botqueue: configuration error: {error}", 2)
        except OperationValidationError as error:
            _fail(f"botqueue: {error}", 2)
        except BotQueueError as error:
            _fail(f"botqueue: {error}", 1)
        except Exception:
            # Python would print this traceback itself, token and all if an error carried it.
            _fail(traceback.format_exc(), 1)

    return wrapper


def _fail(text: str, code: int) -> None:
    # Log lines are written by a thread: let them out first, so the error comes last.
    flush_logs()
    click.echo(redact_secrets(text), err=True)
    sys.exit(code)


@_handles_errors
def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="botqueue", standalone_mode=True)
