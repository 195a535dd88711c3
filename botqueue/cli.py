"""The ``botqueue`` command: parses arguments and delegates. Exit codes: 0 ok, 1 failure,
2 usage or configuration error."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import sys
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import Settings, load_settings
from .errors import BotQueueError, ConfigurationError, OperationValidationError
from .logs import configure_logging, flush_logs, redact_secrets
from .observability.cli_commands import add_observability_commands
from .producer import BotQueueProducer
from .sandbox.cli_command import add_sandbox_command
from .transports import DeadLetter, Transport, open_transport
from .transports.sqs_cli import add_sqs_commands

F = TypeVar("F", bound=Callable[..., Any])


def queue_options(command: F) -> F:
    """Add --queue-url and --dlq-url to a command."""
    command = click.option("--dlq-url", help="DLQ URL [env BOT_OPERATIONS_DLQ_URL].")(command)
    return click.option(
        "--queue-url",
        help="Queue URL [env BOT_OPERATIONS_QUEUE_URL; default sqlite:///botqueue.db].",
    )(command)


def _settings(**flags: Any) -> Settings:
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


def _transport(settings: Settings) -> Transport:
    return open_transport(settings.bot_operations_queue_url, settings.bot_operations_dlq_url)


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


async def _with_transport(settings: Settings, work: Callable[[Transport], Any]) -> Any:
    transport = _transport(settings)
    try:
        return await work(transport)
    finally:
        await transport.aclose()


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
    settings = _settings(
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
    _run(run_worker(settings, service, drain=drain, drop_permanent=drop_permanent))


@cli.group()
def enqueue() -> None:
    """Put one operation on the queue and print its message id."""


def _enqueue(flags: dict[str, Any], call: Callable[[BotQueueProducer], Any]) -> None:
    settings = _settings(**flags)

    async def send() -> str:
        async with BotQueueProducer(_transport(settings)) as producer:
            message_id: str = await call(producer)
            await producer.transport.aclose()
            return message_id

    click.echo(_run(send()))


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
    settings = _settings(**flags)
    if watch:
        _watch_stats(settings, interval, list(metrics_urls))
        return
    figures: dict[str, Any] = _run(_with_transport(settings, lambda t: t.stats())).as_dict()
    if metrics_urls:
        figures["workers"] = _run(_scrape_workers(list(metrics_urls)))
    click.echo(json.dumps(figures))


def _watch_stats(settings: Settings, interval: float, metrics_urls: list[str]) -> None:
    from .observability.cli_commands import outcomes_transport
    from .observability.stats_view import watch

    async def run() -> None:
        transport = _transport(settings)
        outcomes = outcomes_transport(settings.bot_operations_outcomes_url)
        try:
            await watch(transport, outcomes, metrics_urls, interval=interval)
        finally:
            await transport.aclose()
            if outcomes is not None:
                await outcomes.aclose()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl+C is how --watch ends
        _run(run())


async def _scrape_workers(urls: list[str]) -> dict[str, float]:
    import aiohttp

    from .observability.stats_view import scrape, worker_summary

    async with aiohttp.ClientSession() as session:
        return worker_summary(await scrape(session, urls))


@cli.group()
def dlq() -> None:
    """Inspect and act on the dead-letter queue."""


@dlq.command("list")
@queue_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int)
def dlq_list(as_json: bool, limit: int | None, **flags: Any) -> None:
    """List dead letters, oldest first, with their failure records (nothing is consumed)."""
    settings = _settings(**flags)
    letters = _run(_with_transport(settings, lambda t: t.dlq_list(limit)))
    for letter in letters:
        if as_json:
            click.echo(json.dumps(_entry(letter)))
        else:
            failure = letter.failure or {}
            click.echo(
                f"{letter.message_id}  {failure.get('kind', '?'):<12} "
                f"attempts={failure.get('attempts', '?')}  {failure.get('error', '')}"
            )
            click.echo(f"    {letter.body[:200]}")
    if not as_json:
        click.echo(f"{len(letters)} dead letter(s)")


@dlq.command("show")
@queue_options
@click.argument("message_id")
def dlq_show(message_id: str, **flags: Any) -> None:
    """Print one dead letter (body and failure record) as JSON; exit 1 if it is not there."""
    settings = _settings(**flags)
    letters = _run(_with_transport(settings, lambda t: t.dlq_list()))
    found = [letter for letter in letters if letter.message_id == message_id]
    if not found:
        click.echo(f"botqueue: no dead letter with id {message_id}", err=True)
        sys.exit(1)
    click.echo(json.dumps(_entry(found[0]), indent=2))


def _entry(letter: DeadLetter) -> dict[str, Any]:
    return {
        "messageId": letter.message_id,
        "groupId": letter.group_id,
        "body": _body(letter.body),
        "failure": letter.failure,
    }


def _body(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@dlq.command("redrive")
@queue_options
@click.option("--all", "everything", is_flag=True, help="Redrive every dead letter.")
@click.argument("message_ids", nargs=-1)
def dlq_redrive(everything: bool, message_ids: tuple[str, ...], **flags: Any) -> None:
    """Move dead letters back onto the queue, in order, with fresh deduplication ids."""
    if everything == bool(message_ids):
        raise click.UsageError("give message ids or --all (not both)")
    settings = _settings(**flags)
    ids = None if everything else list(message_ids)
    moved = _run(_with_transport(settings, lambda t: t.dlq_redrive(ids)))
    click.echo(f"redrove {moved} message(s)")
    if ids is not None and moved < len(ids):
        sys.exit(1)


@dlq.command("purge")
@queue_options
@click.option("--yes", is_flag=True, help="Confirm: dead letters are deleted for good.")
def dlq_purge(yes: bool, **flags: Any) -> None:
    """Delete every dead letter."""
    if not yes:
        raise click.UsageError("dlq purge deletes dead letters for good: add --yes")
    settings = _settings(**flags)
    click.echo(f"purged {_run(_with_transport(settings, lambda t: t.dlq_purge()))} message(s)")


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
