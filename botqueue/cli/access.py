"""``botqueue access``: the access ledger, who is entitled to which channel, and their links."""

from __future__ import annotations

import datetime as dtm
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from .common import queue_options, run_sync, settings_from

if TYPE_CHECKING:
    from ..config import Settings
    from ..telegram.links import Access, LinkLedger


@click.group()
def access() -> None:
    """Show the access ledger: entitlements (invite performed, no removal since) and links."""


def _ledger(settings: Settings) -> LinkLedger:
    from ..errors import ConfigurationError
    from ..telegram.links import ledger_url, open_ledger

    token = settings.telegram_bot_token
    if token is None:
        # The ledger is kept per bot (a hash of its token): without it there is nothing to read.
        raise ConfigurationError("TELEGRAM_BOT_TOKEN is required to read the access ledger")
    return open_ledger(
        token.get_secret_value(),
        url=ledger_url(settings),
        queue_url=settings.bot_operations_queue_url,
        rate_limit_url=settings.telegram_rate_limit_url,
    )


async def _read(settings: Settings, channel: str, user: int | None) -> list[Access]:
    ledger = _ledger(settings)
    try:
        if user is None:
            return await ledger.accesses(channel)
        found = await ledger.access(channel, user)
        return [found] if found else []
    finally:
        await ledger.aclose()


@access.command("list")
@queue_options
@click.option("--channel", required=True, help="The channel id (as in the operations).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def access_list(channel: str, as_json: bool, **flags: Any) -> None:
    """Every user the ledger knows in the channel, entitled or not, with their links."""
    entries = run_sync(_read(settings_from(**flags), channel, None))
    for entry in entries:
        click.echo(json.dumps(entry_json(entry)) if as_json else _row(entry))
    if not as_json:
        click.echo(f"{len(entries)} user(s), {sum(e.entitled for e in entries)} entitled")


@access.command("show")
@queue_options
@click.option("--channel", required=True, help="The channel id (as in the operations).")
@click.option("--user", "user_id", type=int, required=True, help="The user id.")
@click.option("--json", "as_json", is_flag=True, help="As a JSON object.")
def access_show(channel: str, user_id: int, as_json: bool, **flags: Any) -> None:
    """One user's entry; exit 1 if the ledger never saw them in the channel."""
    entries = run_sync(_read(settings_from(**flags), channel, user_id))
    if not entries:
        click.echo(f"botqueue: no access entry for user {user_id} in {channel}", err=True)
        sys.exit(1)
    entry = entries[0]
    if as_json:
        click.echo(json.dumps(entry_json(entry), indent=2))
        return
    click.echo(_row(entry))
    for link in entry.links:
        click.echo(f"    {link}")


def entry_json(entry: Access) -> dict[str, Any]:
    """An entry as the ``--json`` output shows it (times in ISO 8601, UTC)."""
    return {
        "channelId": entry.chat,
        "userId": entry.user_id,
        "entitled": entry.entitled,
        "subscriptionId": entry.subscription_id,
        "since": _iso(entry.since),
        "revokedAt": _iso(entry.revoked_at),
        "links": list(entry.links),
    }


def _iso(at: float | None) -> str | None:
    if at is None:
        return None
    return dtm.datetime.fromtimestamp(at, dtm.UTC).isoformat(timespec="seconds")


def _row(entry: Access) -> str:
    state = "entitled" if entry.entitled else f"revoked {_iso(entry.revoked_at)}"
    return (
        f"{entry.user_id:<12} {state:<34} since={_iso(entry.since) or '-'}  "
        f"subscription={entry.subscription_id}  links={len(entry.links)}"
    )
