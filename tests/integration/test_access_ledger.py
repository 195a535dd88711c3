"""The access ledger (issue 19): per (chat, user) whether the user is entitled, by which
subscription, since when, and their links; an invite performed grants, a removal performed
revokes. One behaviour table for every backend, then the flows through the sandbox, then
``botqueue access`` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.telegram.links import Access, LinkLedger, SqliteLedger
from tests.factories import DAN, PREMIUM, invite, remove
from tests.integration.ledgers import ledger_fixture  # noqa: F401 (a fixture, used by name)
from tests.integration.redis_server import (  # noqa: F401 (fixtures, used by name)
    redis_server_fixture,
    redis_url_fixture,
)
from tests.integration.test_invite_ledger import service_with

CHAT = "-1001"


async def test_a_grant_entitles_the_user_since_then(ledger: LinkLedger) -> None:
    before = time.time()
    assert await ledger.access(CHAT, 7) is None
    await ledger.grant(CHAT, 7, "s1")
    entry = await ledger.access(CHAT, 7)
    assert entry is not None and entry.entitled and entry.subscription_id == "s1"
    assert entry.since is not None and before <= entry.since <= time.time()
    assert entry.revoked_at is None and entry.links == ()


async def test_a_revoke_ends_it_and_a_repeat_changes_nothing(ledger: LinkLedger) -> None:
    await ledger.grant(CHAT, 7, "s1")
    granted_at = (await ledger.access(CHAT, 7) or pytest.fail()).since
    await ledger.revoke(CHAT, 7, "s1")
    first = await ledger.access(CHAT, 7)
    assert first is not None and not first.entitled and first.revoked_at is not None
    assert first.since == granted_at and first.subscription_id == "s1"
    await ledger.revoke(CHAT, 7, "s1")  # a redelivered removal
    assert await ledger.access(CHAT, 7) == first


async def test_a_regrant_with_a_new_subscription_replaces_the_old(ledger: LinkLedger) -> None:
    await ledger.grant(CHAT, 7, "s1")
    await ledger.revoke(CHAT, 7, "s1")
    await ledger.grant(CHAT, 7, "s2")
    entry = await ledger.access(CHAT, 7)
    assert entry is not None and entry.entitled and entry.subscription_id == "s2"
    assert entry.revoked_at is None


async def test_a_removal_of_a_user_never_invited_is_recorded(ledger: LinkLedger) -> None:
    await ledger.revoke(CHAT, 9, "s9")
    entry = await ledger.access(CHAT, 9)
    assert entry == Access(CHAT, 9, False, "s9", None, entry.revoked_at if entry else None)
    assert entry is not None and entry.revoked_at is not None


async def test_links_are_attached_and_forgotten_and_found_by_url(ledger: LinkLedger) -> None:
    await ledger.grant(CHAT, 7, "s1")
    await ledger.record(CHAT, 7, "https://t.me/+a", time.time() + 60)
    await ledger.record(CHAT, 7, "https://t.me/+b", time.time() + 60)
    assert (await ledger.access(CHAT, 7) or pytest.fail()).links == (
        "https://t.me/+a",
        "https://t.me/+b",
    )
    assert await ledger.owner("https://t.me/+a") == (CHAT, 7)
    await ledger.forget("https://t.me/+a")
    assert await ledger.owner("https://t.me/+a") is None
    assert await ledger.owner("https://t.me/+unknown") is None
    assert (await ledger.access(CHAT, 7) or pytest.fail()).links == ("https://t.me/+b",)


async def test_list_by_channel(ledger: LinkLedger) -> None:
    await ledger.grant(CHAT, 8, "s8")
    await ledger.grant(CHAT, 7, "s7")
    await ledger.revoke(CHAT, 8, "s8")
    await ledger.grant("-1002", 7, "other")
    listed = await ledger.accesses(CHAT)
    assert [(e.user_id, e.entitled, e.subscription_id) for e in listed] == [
        (7, True, "s7"),
        (8, False, "s8"),
    ]
    assert await ledger.accesses("-1003") == []


async def test_an_old_links_file_gains_the_access_table(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "q.links.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE links (url TEXT PRIMARY KEY, bot TEXT NOT NULL, chat TEXT NOT NULL, "
        "user_id INTEGER NOT NULL, created REAL NOT NULL, expires REAL NOT NULL);"
    )
    old.close()
    ledger = SqliteLedger(str(path), "t")
    await ledger.record(CHAT, 7, "https://t.me/+a", time.time() + 60)
    await ledger.grant(CHAT, 7, "s1")
    assert (await ledger.access(CHAT, 7) or pytest.fail()).links == ("https://t.me/+a",)
    await ledger.aclose()


# -- through the flows, against the sandbox -------------------------------------------------


async def test_an_invite_grants_and_a_removal_revokes(
    sandbox: SandboxServer, control: SandboxControl, ledger: LinkLedger
) -> None:
    service = await service_with(sandbox, ledger)
    link = (await service.invite_user(invite(sub="s1"))).detail["inviteLink"]
    entry = await ledger.access(PREMIUM, DAN)
    assert entry is not None and entry.entitled and entry.subscription_id == "s1"
    assert entry.links == (link,)
    assert await ledger.owner(link) == (PREMIUM, DAN)

    assert await control.join(DAN, link) == "member"
    assert (await service.invite_user(invite(sub="s1"))).status == "noop"  # redelivered
    assert (await ledger.access(PREMIUM, DAN) or pytest.fail()).entitled

    assert (await service.remove_user(remove(sub="s1"))).status == "succeeded"
    removed = await ledger.access(PREMIUM, DAN)
    assert removed is not None and not removed.entitled and removed.links == ()
    assert (await service.remove_user(remove(sub="s1"))).status == "noop"  # redelivered
    assert await ledger.access(PREMIUM, DAN) == removed
    await service.aclose()


async def test_a_join_request_invite_grants_delivered_or_not(
    sandbox: SandboxServer, ledger: LinkLedger
) -> None:
    service = await service_with(sandbox, ledger)
    await service.invite_user(invite(DAN, sub="s1", invite_mode="join_request"))
    # 1005 never started the bot: the link is not delivered, and the invite still performed.
    undelivered = await service.invite_user(invite(1005, sub="s5", invite_mode="join_request"))
    assert undelivered.detail["delivered"] is False
    listed = await ledger.accesses(PREMIUM)
    assert [(e.user_id, e.entitled, e.subscription_id) for e in listed] == [
        (DAN, True, "s1"),
        (1005, True, "s5"),
    ]
    assert await ledger.owner(undelivered.detail["inviteLink"]) == (PREMIUM, 1005)
    await service.aclose()


# -- botqueue access, as a real process -----------------------------------------------------

PREFIXES = ("BOT_OPERATIONS_", "BOTQUEUE_", "TELEGRAM_", "AWS_REGION", "USE_LOCALSTACK", "SQS_")
TOKEN = "123456789:AAE-secret-token-value"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith(PREFIXES)}
    clean["BOT_OPERATIONS_QUEUE_URL"] = f"sqlite:///{tmp_path / 'q.db'}"
    return subprocess.run(
        [sys.executable, "-m", "botqueue", "access", *args],
        env={**clean, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
async def beside_the_queue(tmp_path: Path) -> Path:
    """The default ledger of an embedded queue ``q.db``: ``q.links.db``, with two users."""
    ledger = SqliteLedger(str(tmp_path / "q.links.db"), TOKEN)
    await ledger.grant(CHAT, 7, "s7")
    await ledger.record(CHAT, 7, "https://t.me/+seven", time.time() + 600)
    await ledger.grant(CHAT, 8, "s8")
    await ledger.revoke(CHAT, 8, "s8")
    await ledger.aclose()
    return tmp_path


def test_access_list_and_show(beside_the_queue: Path) -> None:
    folder = beside_the_queue
    table = _run(folder, "list", "--channel", CHAT, TELEGRAM_BOT_TOKEN=TOKEN)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("7 ") and "entitled" in lines[0] and "subscription=s7" in lines[0]
    assert lines[1].startswith("8 ") and "revoked" in lines[1]
    assert lines[-1] == "2 user(s), 1 entitled"
    assert TOKEN not in table.stdout + table.stderr

    listed = _run(folder, "list", "--channel", CHAT, "--json", TELEGRAM_BOT_TOKEN=TOKEN)
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["userId"], r["entitled"], r["subscriptionId"]) for r in rows] == [
        (7, True, "s7"),
        (8, False, "s8"),
    ]
    assert rows[0]["links"] == ["https://t.me/+seven"] and rows[0]["revokedAt"] is None

    shown = _run(
        folder, "show", "--channel", CHAT, "--user", "7", "--json", TELEGRAM_BOT_TOKEN=TOKEN
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == rows[0]
    text = _run(folder, "show", "--channel", CHAT, "--user", "7", TELEGRAM_BOT_TOKEN=TOKEN)
    assert "https://t.me/+seven" in text.stdout
    missing = _run(folder, "show", "--channel", CHAT, "--user", "9", TELEGRAM_BOT_TOKEN=TOKEN)
    assert missing.returncode == 1 and "no access entry" in missing.stderr


def test_the_access_ledger_url_overrides_its_older_name(beside_the_queue: Path) -> None:
    folder = beside_the_queue
    (folder / "q.links.db").rename(folder / "access.db")
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_ACCESS_LEDGER_URL": f"sqlite:///{folder / 'access.db'}",
        "TELEGRAM_INVITE_LEDGER_URL": f"sqlite:///{folder / 'empty.db'}",
    }
    result = _run(folder, "list", "--channel", CHAT, **env)
    assert result.stdout.splitlines()[-1] == "2 user(s), 1 entitled", result.stderr
    del env["TELEGRAM_ACCESS_LEDGER_URL"]
    older = _run(folder, "list", "--channel", CHAT, **env)
    assert older.stdout.splitlines()[-1] == "0 user(s), 0 entitled", older.stderr


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({}, "TELEGRAM_BOT_TOKEN"),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_INVITE_LEDGER_URL": "memcached://x"},
            "TELEGRAM_INVITE_LEDGER_URL",
        ),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_ACCESS_LEDGER_URL": "memcached://x"},
            "TELEGRAM_ACCESS_LEDGER_URL",
        ),
    ],
)
def test_access_misconfigured_is_one_line_exit_2(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    result = _run(tmp_path, "list", "--channel", CHAT, **env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in result.stderr
    assert TOKEN not in result.stderr
