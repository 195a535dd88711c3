"""The dashboard's safety: the token (401/403 without it, constant-time compare), CSRF on every
POST, the security headers, and the CLI's refusal to serve beyond loopback unguarded; the bot
token never appears in what it serves."""

from __future__ import annotations

import asyncio
import hmac
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from botqueue.dashboard import security
from botqueue.transports import SqliteTransport
from tests.integration.sqs_servers import free_port
from tests.integration.test_dashboard_support import (
    browser,
    csrf_of,
    dead_letter,
    failure,
    operation,
    page,
    serving,
)

ROOT = Path(__file__).resolve().parents[2]
LONG = 600.0
TOKEN = "dashboard-secret-0123456789"


async def status_of(session: aiohttp.ClientSession, url: str, **options: object) -> int:
    async with session.get(url, **options) as response:  # type: ignore[arg-type]
        await response.read()
        return response.status


async def test_a_configured_token_is_required(sqlite_transport: SqliteTransport) -> None:
    async with serving(sqlite_transport, refresh=LONG, token=TOKEN) as served:
        async with aiohttp.ClientSession() as plain:
            for path in ["/", "/api/overview", "/dead-letters", "/static/dashboard.js"]:
                assert await status_of(plain, served.url + path) == 401
            assert await status_of(plain, served.url + "/?token=wrong") == 403
            wrong = {"Authorization": "Bearer wrong"}
            assert await status_of(plain, served.url + "/api/overview", headers=wrong) == 403
            right = {"Authorization": f"Bearer {TOKEN}"}
            assert await status_of(plain, served.url + "/api/overview", headers=right) == 200
        async with browser() as session:
            async with session.get(f"{served.url}/?token={TOKEN}") as response:
                assert response.status == 200
                cookie = response.headers.getall("Set-Cookie")
            # The query sets a cookie for the rest of the visit; it is not the token itself.
            auth = next(c for c in cookie if c.startswith(security.AUTH_COOKIE))
            assert "HttpOnly" in auth and "SameSite=Strict" in auth and TOKEN not in auth
            assert await status_of(session, served.url + "/dead-letters") == 200
            assert await status_of(session, served.url + "/api/overview") == 200


async def test_tokens_are_compared_in_constant_time(
    sqlite_transport: SqliteTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    async with (
        serving(sqlite_transport, refresh=LONG, token=TOKEN) as served,
        aiohttp.ClientSession() as plain,
    ):
        headers = {"Authorization": "Bearer not-the-token"}
        assert await status_of(plain, served.url + "/", headers=headers) == 403
    assert (b"not-the-token", TOKEN.encode()) in compared


async def test_every_post_needs_its_csrf_token(sqlite_transport: SqliteTransport) -> None:
    await dead_letter(
        sqlite_transport, [(operation("VERIFY_PERMISSIONS", "-1"), failure("permanent"))]
    )
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        token = csrf_of(await page(session, served.url + "/dead-letters"))
        for path, data in [
            ("/dead-letters/confirm", {"action": "purge"}),
            ("/dead-letters/redrive", {"scope": "all"}),
            ("/dead-letters/purge", {}),
        ]:
            for bad in [None, "", "0" * 64, token + "x"]:
                form = dict(data) if bad is None else {**data, "csrf_token": bad}
                async with session.post(served.url + path, data=form) as response:
                    assert response.status == 403, (path, bad)
        # Another browser's token is no good in this one's session.
        async with (
            browser() as other,
            other.post(served.url + "/dead-letters/purge", data={"csrf_token": token}) as response,
        ):
            assert response.status == 403
        assert len(await sqlite_transport.dlq_list()) == 1
        async with session.post(
            served.url + "/dead-letters/purge", data={"csrf_token": token}
        ) as response:
            assert response.status == 200
            assert [r.status for r in response.history] == [303]
    assert await sqlite_transport.dlq_list() == []


async def test_security_headers_on_every_response(sqlite_transport: SqliteTransport) -> None:
    async with serving(sqlite_transport, refresh=LONG) as served, browser() as session:
        for path in ["/", "/dead-letters", "/api/overview", "/static/dashboard.css", "/nowhere"]:
            async with session.get(served.url + path) as response:
                headers = response.headers
                assert headers["X-Frame-Options"] == "DENY", path
                assert headers["Content-Security-Policy"].startswith("default-src 'self'")
                assert headers["X-Content-Type-Options"] == "nosniff"
        html = await page(session, served.url + "/")
    # No inline script for the policy to forbid: the one script is a file.
    assert html.count("<script") == 1 and '<script src="/static/dashboard.js" defer>' in html


def dashboard_cli(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botqueue", "dashboard", *args],
        cwd=ROOT,
        env={**os.environ, "BOTQUEUE_LOG_LEVEL": "warning", **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "BOTQUEUE_DASHBOARD_TOKEN"}


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.7", "example.org", "::"])
def test_the_cli_refuses_a_non_loopback_host_without_allow_remote(host: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "botqueue", "dashboard", "--host", host],
        cwd=ROOT,
        env={**clean_env(), "BOTQUEUE_DASHBOARD_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-remote" in lines[0], done.stderr


def test_the_cli_refuses_allow_remote_without_a_token() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "botqueue", "dashboard", "--host", "0.0.0.0", "--allow-remote"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "BOTQUEUE_DASHBOARD_TOKEN" in lines[0], done.stderr


async def first_page(
    session: aiohttp.ClientSession, url: str, process: asyncio.subprocess.Process
) -> str:
    """The first page of a dashboard process that is starting (bounded by the test timeout)."""
    while True:
        try:
            return await page(session, url)
        except aiohttp.ClientConnectionError:
            assert process.returncode is None, "the dashboard exited"
            await asyncio.sleep(0.1)


async def test_the_cli_serves_and_the_bot_token_never_appears(tmp_path: Path) -> None:
    bot_token = "123456789:AAbotTokenThatMustNeverShow_xyz"
    url = f"sqlite:///{tmp_path / 'q.db'}"
    async with SqliteTransport(url) as transport:
        await dead_letter(
            transport,
            [(operation("INVITE_USER", "-1", 5), failure("permanent", f"bad {bot_token}"))],
        )
    port = free_port()
    env = {**clean_env(), "TELEGRAM_BOT_TOKEN": bot_token, "BOTQUEUE_LOG_LEVEL": "info"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botqueue",
        "dashboard",
        "--queue-url",
        url,
        "--port",
        str(port),
        "--refresh",
        "0.2",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with browser() as session:
            html = await first_page(session, base + "/", process)
            listing = await page(session, base + "/dead-letters")
            letter_id = listing.split('data-message-id="')[1].split('"')[0]
            detail = await page(session, f"{base}/dead-letters/{letter_id}")
            async with session.get(base + "/api/overview") as response:
                api = await response.text()
    finally:
        process.terminate()
        out_bytes, err_bytes = await asyncio.wait_for(process.communicate(), 30)
    out, err = out_bytes.decode(), err_bytes.decode()
    assert process.returncode == 0, err  # SIGTERM stops it cleanly
    assert f"botqueue dashboard on {base}/" in out
    assert "dead-letters" in html
    for text in [html, listing, detail, api, out, err]:
        assert bot_token not in text
        assert bot_token.partition(":")[2] not in text
    assert "&lt;token&gt;" in detail  # the failure record's copy, redacted


async def test_the_cli_says_in_one_line_that_its_port_is_taken(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "botqueue",
            "dashboard",
            "--queue-url",
            f"sqlite:///{tmp_path / 'q.db'}",
            "--port",
            str(port),
            cwd=ROOT,
            env={**clean_env(), "BOTQUEUE_LOG_LEVEL": "warning"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        taken.close()
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and f"cannot listen on 127.0.0.1:{port}" in lines[0], err
    assert b"botqueue dashboard on" not in out
