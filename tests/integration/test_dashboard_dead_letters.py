"""The dead-letter pages over a real embedded queue (and one case on moto's SQS): the table and
its filters, the detail view, hostile bodies, and redrive and purge behind confirmations."""

from __future__ import annotations

import json

import aiohttp

from botqueue.transports import SqliteTransport, Transport
from tests.integration.sqs_servers import SqsServer, sqs_transport
from tests.integration.test_dashboard_support import (
    ROW_IDS,
    browser,
    csrf_of,
    dead_letter,
    element,
    failure,
    flash_of,
    operation,
    page,
    serving,
    text_of,
)

LONG = 600.0
LINK = "https://t.me/+undelivered123"

LETTERS = [
    (
        operation("INVITE_USER", "-1001", 7),
        failure("permanent", "bot_blocked", inviteLink=LINK, linkValid=True),
    ),
    (operation("REMOVE_USER", "-1001", 8), failure("exhausted", "timeout")),
    (operation("VERIFY_PERMISSIONS", "-1002"), failure("permanent", "not_admin")),
    ("not json at all", failure("undecodable")),
]


async def ids_on_page(session: aiohttp.ClientSession, url: str) -> list[str]:
    """The message ids of the table's rows, in order."""
    return ROW_IDS.findall(await page(session, url))


async def post(
    session: aiohttp.ClientSession, url: str, data: list[tuple[str, str]]
) -> tuple[int, str]:
    """POST a form, following the 303; (final status, final page)."""
    async with session.post(url, data=data) as response:
        return response.status, await response.text()


async def test_the_table_lists_every_field_and_viewing_consumes_nothing(
    sqlite_transport: SqliteTransport,
) -> None:
    ids = await dead_letter(sqlite_transport, LETTERS)
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        html = await page(session, served.url + "/dead-letters")
        again = await ids_on_page(session, served.url + "/dead-letters")
    assert ROW_IDS.findall(html) == ids == again  # oldest first, both times
    row = html[html.index(f'data-message-id="{ids[0]}"') :].split("</tr>")[0]
    for css, value in [
        ("op-type", "INVITE_USER"),
        ("channel", "-1001"),
        ("user", "7"),
        ("kind", "permanent"),
        ("reason", "bot_blocked"),
        ("attempts", "3"),
        ("first-attempt", "2026-12-01T10:00:00.000Z"),
        ("last-attempt", "2026-12-01T10:00:07.000Z"),
    ]:
        assert f'class="{css}">{value}<' in row
    assert [letter.message_id for letter in await sqlite_transport.dlq_list()] == ids
    assert (await sqlite_transport.stats()).dead_letters == 4


async def test_filters_by_kind_reason_and_type(sqlite_transport: SqliteTransport) -> None:
    ids = await dead_letter(sqlite_transport, LETTERS)
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        base = served.url + "/dead-letters"
        by_kind = await ids_on_page(session, base + "?kind=permanent")
        by_reason = await ids_on_page(session, base + "?reason=timeout")
        by_type = await ids_on_page(session, base + "?type=VERIFY_PERMISSIONS")
        both = await ids_on_page(session, base + "?kind=permanent&type=INVITE_USER&reason=")
        none = await ids_on_page(session, base + "?kind=max_receive_count")
        html = await page(session, base + "?kind=permanent")
    assert by_kind == [ids[0], ids[2]]
    assert by_reason == [ids[1]]
    assert by_type == [ids[2]]
    assert both == [ids[0]]
    assert none == []
    filters = html[html.index('id="filters"') :].split("</form>")[0]
    assert '<select name="kind">' in filters and '<select name="reason">' in filters
    assert '<option value="permanent" selected>' in filters
    assert 'id="apply-filters"' in filters


async def test_the_detail_view_shows_body_failure_and_the_undelivered_link(
    sqlite_transport: SqliteTransport,
) -> None:
    ids = await dead_letter(sqlite_transport, LETTERS)
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        invite = await page(session, f"{served.url}/dead-letters/{ids[0]}")
        raw = await page(session, f"{served.url}/dead-letters/{ids[3]}")
        async with session.get(f"{served.url}/dead-letters/no-such-id") as response:
            missing = response.status
    body = invite[invite.index('<pre id="operation-body">') :].split("</pre>")[0]
    assert json.dumps(json.loads(LETTERS[0][0]), indent=2).replace('"', "&#34;") in body
    assert "bot_blocked" in invite[invite.index('<pre id="failure-record">') :]
    assert text_of(invite, "invite-link") == LINK
    assert 'id="redrive-one"' in invite
    assert '<pre id="operation-body">not json at all</pre>' in raw
    assert 'id="invite-link"' not in raw
    assert missing == 404


async def test_hostile_bodies_render_as_escaped_text(sqlite_transport: SqliteTransport) -> None:
    script = '<script>alert("owned")</script>'
    nested = "[" * 5000
    balanced = "[" * 900 + "]" * 900  # parses, and is deep enough to strain a writer
    ids = await dead_letter(
        sqlite_transport,
        [
            (script, failure("undecodable", "<img src=x onerror=alert(1)>")),
            (json.dumps({"operationType": "<b>x</b>", "channelId": script}), failure("permanent")),
            (nested, failure("undecodable")),
            (balanced, failure("undecodable")),
        ],
    )
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        table = await page(session, served.url + "/dead-letters")
        details = [await page(session, f"{served.url}/dead-letters/{i}") for i in ids]
    for html in [table, *details]:
        assert "<script>alert" not in html
        assert "<img src=x" not in html
        assert "<b>x</b>" not in html
    assert ROW_IDS.findall(table) == ids
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt;" in element(
        details[0], "operation-body"
    )
    assert nested in element(details[2], "operation-body")


async def test_get_never_changes_state_and_a_redrive_needs_its_confirmation(
    sqlite_transport: SqliteTransport,
) -> None:
    ids = await dead_letter(sqlite_transport, LETTERS)
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        for path in ["/dead-letters/redrive", "/dead-letters/purge", "/dead-letters/confirm"]:
            # GET /dead-letters/purge is the detail route of a letter named "purge".
            async with session.get(served.url + path) as response:
                assert response.status in (404, 405)
        assert len(await sqlite_transport.dlq_list()) == 4
        html = await page(session, f"{served.url}/dead-letters/{ids[1]}")
        token = csrf_of(html)
        status, confirmation = await post(
            session,
            served.url + "/dead-letters/confirm",
            [("csrf_token", token), ("action", "redrive-one"), ("message_id", ids[1])],
        )
        assert status == 200
        assert 'id="confirm"' in confirmation and 'id="cancel"' in confirmation
        assert ids[1] in confirmation
        # Showing the confirmation moved nothing.
        assert len(await sqlite_transport.dlq_list()) == 4
        status, after = await post(
            session,
            served.url + "/dead-letters/redrive",
            [("csrf_token", csrf_of(confirmation)), ("scope", "ids"), ("message_id", ids[1])],
        )
    assert status == 200
    assert flash_of(after) == "Redrove 1 dead letter."
    assert ids[1] not in ROW_IDS.findall(after)
    assert [letter.message_id for letter in await sqlite_transport.dlq_list()] == [
        ids[0],
        ids[2],
        ids[3],
    ]
    back = await sqlite_transport.receive(10, wait_seconds=1)
    assert [m.body for m in back] == [LETTERS[1][0]]


async def test_redrive_a_selection_then_all_then_purge(sqlite_transport: SqliteTransport) -> None:
    ids = await dead_letter(sqlite_transport, LETTERS)
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        token = csrf_of(await page(session, served.url + "/dead-letters"))
        confirm_url = served.url + "/dead-letters/confirm"
        status, confirmation = await post(
            session,
            confirm_url,
            [
                ("csrf_token", token),
                ("action", "redrive-selected"),
                ("message_id", ids[0]),
                ("message_id", ids[2]),
            ],
        )
        assert status == 200 and "Redrive 2 dead letters" in confirmation
        _, after = await post(
            session,
            served.url + "/dead-letters/redrive",
            [
                ("csrf_token", token),
                ("scope", "ids"),
                ("message_id", ids[0]),
                ("message_id", ids[2]),
            ],
        )
        assert flash_of(after) == "Redrove 2 dead letters."
        assert ROW_IDS.findall(after) == [ids[1], ids[3]]
        _, nothing = await post(
            session, confirm_url, [("csrf_token", token), ("action", "redrive-selected")]
        )
        assert flash_of(nothing) == "No dead letter selected: nothing was done."
        status, confirmation = await post(
            session, confirm_url, [("csrf_token", token), ("action", "redrive-all")]
        )
        assert status == 200 and 'name="scope" value="all"' in confirmation
        _, after = await post(
            session, served.url + "/dead-letters/redrive", [("csrf_token", token), ("scope", "all")]
        )
        assert flash_of(after) == "Redrove 2 dead letters."
        assert ROW_IDS.findall(after) == []
        assert (await sqlite_transport.stats()).visible == 4
        # Put three back on the DLQ, and purge them.
        await sqlite_transport.delete_batch(
            [m.receipt for m in await sqlite_transport.receive(10, wait_seconds=1)]
        )
        await dead_letter(sqlite_transport, LETTERS[:3])
        status, confirmation = await post(
            session, confirm_url, [("csrf_token", token), ("action", "purge")]
        )
        assert status == 200 and "cannot be undone" in confirmation
        assert len(await sqlite_transport.dlq_list()) == 3
        _, after = await post(session, served.url + "/dead-letters/purge", [("csrf_token", token)])
    assert flash_of(after) == "Purged 3 dead letters."
    assert await sqlite_transport.dlq_list() == []


async def test_a_forged_or_stale_flash_is_not_shown(sqlite_transport: SqliteTransport) -> None:
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        signed = served.state.guard.sign_flash("Purged 9 dead letters.")
        forged = signed.rpartition(".")[0] + "." + "0" * 64
        shown = await page(session, f"{served.url}/dead-letters?flash={signed}")
        hidden = await page(session, f"{served.url}/dead-letters?flash={forged}")
    assert flash_of(shown) == "Purged 9 dead letters."
    assert 'id="flash"' not in hidden


async def sqs_letters(transport: Transport) -> list[str]:
    return [letter.message_id for letter in await transport.dlq_list()]


async def test_on_sqs_viewing_consumes_nothing_and_redrive_moves_one(
    moto_server: SqsServer,
) -> None:
    async with sqs_transport(moto_server, "dash") as transport:
        ids = await dead_letter(transport, LETTERS[:3])
        async with serving(transport, refresh=LONG) as served, browser() as session:
            overview = await page(session, served.url + "/")
            first = await ids_on_page(session, served.url + "/dead-letters")
            detail = await page(session, f"{served.url}/dead-letters/{ids[0]}")
            second = await ids_on_page(session, served.url + "/dead-letters")
            _, after = await post(
                session,
                served.url + "/dead-letters/redrive",
                [("csrf_token", csrf_of(detail)), ("scope", "ids"), ("message_id", ids[0])],
            )
        assert text_of(overview, "dead-letters") == "3"
        assert first == second == ids
        assert text_of(detail, "invite-link") == LINK
        assert flash_of(after) == "Redrove 1 dead letter."
        assert ROW_IDS.findall(after) == ids[1:]
        assert await sqs_letters(transport) == ids[1:]
        back = await transport.receive(10, wait_seconds=2)
        assert [m.body for m in back] == [LETTERS[0][0]]
