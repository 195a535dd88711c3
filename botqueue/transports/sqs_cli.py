"""The SQS commands of the ``botqueue`` CLI: ``botqueue setup``."""

from __future__ import annotations

import asyncio
import sys

import click

from ..config import load_settings
from ..logs import configure_logging
from .sqs_client import create_client, register_hooks, resolve_client_config, translated
from .sqs_setup import (
    DEFAULT_MAX_RECEIVE_COUNT,
    DLQ_NAME,
    QUEUE_NAME,
    SetupReport,
    setup_queues,
)


async def run_setup(
    queue_name: str, dlq_name: str, max_receive_count: int, fix: bool
) -> SetupReport:
    """Set the queues up with a client from AWS_REGION / USE_LOCALSTACK / SQS_ENDPOINT."""
    config = resolve_client_config(None)
    with translated("client set-up"):
        context = create_client(config)
        client = await context.__aenter__()
    try:
        register_hooks(client)
        return await setup_queues(
            client,
            queue_name=queue_name,
            dlq_name=dlq_name,
            max_receive_count=max_receive_count,
            fix=fix,
        )
    finally:
        await context.__aexit__(None, None, None)


def add_sqs_commands(cli: click.Group) -> None:
    """Register ``setup`` on the botqueue command group."""

    @cli.command("setup")
    @click.option("--queue-name", default=QUEUE_NAME, show_default=True)
    @click.option("--dlq-name", default=DLQ_NAME, show_default=True)
    @click.option(
        "--max-receive-count",
        type=int,
        default=DEFAULT_MAX_RECEIVE_COUNT,
        show_default=True,
        help="Redrive policy; must exceed every attempt count (maxRetries <= 20).",
    )
    @click.option(
        "--fix", is_flag=True, help="Set drifted attributes back (FifoQueue cannot change)."
    )
    def setup(queue_name: str, dlq_name: str, max_receive_count: int, fix: bool) -> None:
        """Create the SQS FIFO queue and its DLQ as the spec configures them; report drift.

        Existing queues are never changed unless --fix is given; exit 1 when drift remains.
        """
        configure_logging(load_settings().botqueue_log_level)
        report = asyncio.run(run_setup(queue_name, dlq_name, max_receive_count, fix))
        for line in report.lines():
            click.echo(line)
        if report.unfixed:
            sys.exit(1)
