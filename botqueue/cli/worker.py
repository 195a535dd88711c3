"""``botqueue worker``: consume operations until SIGTERM, optionally restarting on changes."""

from __future__ import annotations

import sys
from typing import Any

import click

from .common import queue_options, run_sync, settings_from


@click.command()
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
        from ..observability.reload import run_with_reload

        sys.exit(run_with_reload(child_argv, grace_period=settings.botqueue_grace_period))
    from ..worker import run_worker, service_from_settings

    service = service_from_settings(settings)
    run_sync(run_worker(settings, service, drain=drain, drop_permanent=drop_permanent))


def child_arguments(ctx: click.Context, skip: frozenset[str]) -> list[str]:
    """The command's options as given, back in argv form, without those named in ``skip``
    (so ``worker --reload`` can start ``worker`` with everything else)."""
    argv: list[str] = []
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name in skip or param.name is None:
            continue
        value: Any = ctx.params.get(param.name)
        if param.is_flag:
            if value:
                argv.append(param.opts[0])
        elif value is not None:
            argv.extend([param.opts[0], str(value)])
    return argv
