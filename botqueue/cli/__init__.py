"""The ``botqueue`` command: parses arguments and delegates. Exit codes: 0 ok, 1 failure,
2 usage or configuration error.

One module per command group; each imports only click and the standard library at its top and
what a command needs inside that command, so ``botqueue --help`` and the commands of the
embedded queue start without loading aiobotocore, aiohttp or the observability server
(tests/unit/test_cli_imports.py checks this).
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from typing import Any

import click

from ..errors import BotQueueError, ConfigurationError, OperationValidationError
from . import access, dashboard, dlq, observability, queue, sandbox, worker


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="botqueue")
def cli() -> None:
    """botqueue: Telegram membership operations on a durable FIFO queue."""


for _command in (
    worker.worker,
    queue.enqueue,
    queue.stats,
    queue.setup,
    dlq.dlq,
    access.access,
    observability.health,
    sandbox.sandbox,
    sandbox.demo,
    dashboard.dashboard,
):
    cli.add_command(_command)


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
    from ..logs import flush_logs, redact_secrets

    # Log lines are written by a thread: let them out first, so the error comes last.
    flush_logs()
    click.echo(redact_secrets(text), err=True)
    sys.exit(code)


@_handles_errors
def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="botqueue", standalone_mode=True)
