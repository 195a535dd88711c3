"""``botqueue dlq``: list, show, redrive and purge dead letters."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from .common import queue_options, run_sync, settings_from, with_transport

if TYPE_CHECKING:
    from ..transports import DeadLetter


@click.group()
def dlq() -> None:
    """Inspect and act on the dead-letter queue."""


@dlq.command("list")
@queue_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", type=int)
def dlq_list(as_json: bool, limit: int | None, **flags: Any) -> None:
    """List dead letters, oldest first, with their failure records (nothing is consumed)."""
    settings = settings_from(**flags)
    letters = run_sync(with_transport(settings, lambda t: t.dlq_list(limit)))
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
    settings = settings_from(**flags)
    letters = run_sync(with_transport(settings, lambda t: t.dlq_list()))
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
    # A body that is not JSON, or JSON nested past the parser's recursion limit (a dead letter
    # of "[" x 5,000), is shown as the text it is: one such letter must not hide the others.
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw


@dlq.command("redrive")
@queue_options
@click.option("--all", "everything", is_flag=True, help="Redrive every dead letter.")
@click.argument("message_ids", nargs=-1)
def dlq_redrive(everything: bool, message_ids: tuple[str, ...], **flags: Any) -> None:
    """Move dead letters back onto the queue, in order, with fresh deduplication ids."""
    if everything == bool(message_ids):
        raise click.UsageError("give message ids or --all (not both)")
    settings = settings_from(**flags)
    ids = None if everything else list(message_ids)
    moved = run_sync(with_transport(settings, lambda t: t.dlq_redrive(ids)))
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
    settings = settings_from(**flags)
    click.echo(f"purged {run_sync(with_transport(settings, lambda t: t.dlq_purge()))} message(s)")
