"""Security (issue 12, point 7), the focused parts: the token search finds every form of the
token; servers bind loopback by default and refuse other addresses without --allow-remote; the
sandbox reads and writes nothing outside its own state, whatever path or world it is sent."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from botqueue.sandbox import DEFAULT_TOKEN, DEFAULT_WORLD, SandboxControl, SandboxServer
from tests.chaos.scenario_security import TOKEN, leaks, listening

ROOT = Path(__file__).resolve().parents[2]
SECRET_FILE = "/etc/passwd"


def botqueue(*args: str, cwd: Path = ROOT, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a botqueue command to its end."""
    return subprocess.run(
        [sys.executable, "-m", "botqueue", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    "text",
    [f"GET /bot{TOKEN}/getMe", TOKEN.partition(":")[2], TOKEN.replace(":", "%3A"), TOKEN],
    ids=["url", "secret half", "url-encoded", "token"],
)
def test_the_search_finds_every_form_of_the_token(text: str) -> None:
    assert leaks({"a log": f"error: {text} failed"}, TOKEN)
    assert not leaks({"a log": "error: <token> failed"}, TOKEN)


@pytest.mark.parametrize(
    "command",
    [
        ["sandbox", "--host", "0.0.0.0", "--port", "0"],
        ["sandbox", "--host", "::", "--port", "0"],
        ["sandbox", "--host", "example.org", "--port", "0"],
        ["dashboard", "--host", "0.0.0.0", "--port", "0"],
    ],
    ids=["sandbox 0.0.0.0", "sandbox ::", "sandbox by name", "dashboard 0.0.0.0"],
)
def test_a_remote_bind_needs_allow_remote(command: list[str], tmp_path: Path) -> None:
    done = botqueue(*command, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--allow-remote" in done.stderr and "Traceback" not in done.stderr


async def start_sandbox_cli(folder: Path, *args: str) -> tuple[asyncio.subprocess.Process, str]:
    """``botqueue sandbox --port 0`` in ``folder`` (its HOME too); the process and its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botqueue",
        "sandbox",
        "--port",
        "0",
        *args,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HOME": str(folder)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    line = await asyncio.wait_for(process.stderr.readline(), 60)
    assert b"sandbox on " in line, line
    return process, line.decode().split("sandbox on ")[1].strip()


async def test_the_sandbox_binds_loopback_and_writes_no_file(tmp_path: Path) -> None:
    process, url = await start_sandbox_cli(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        binds = await asyncio.to_thread(listening, process.pid)
        assert binds == [("127.0.0.1", int(url.rsplit(":", 1)[1]))]
        async with SandboxControl(url) as control:
            await control.inject_fault("getMe", 502, "Bad Gateway")
            await control.reset()
            assert await control.health()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []


TRAVERSALS = [
    "/_sandbox/../../../../etc/passwd",
    "/_sandbox/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/_sandbox/..%2F..%2F..%2Fetc%2Fpasswd",
    f"/bot{DEFAULT_TOKEN}/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    f"/file/bot{DEFAULT_TOKEN}/../../../../etc/passwd",
    f"/file/bot{DEFAULT_TOKEN}/%2Fetc%2Fpasswd",
    "//etc/passwd",
    "/static/../../../etc/passwd",
]


async def test_no_request_path_reaches_a_file() -> None:
    async with SandboxServer() as sandbox, aiohttp.ClientSession() as http:
        for path in TRAVERSALS:
            # encoded=True: sent as written, not normalised by the client first.
            async with http.get(URL(sandbox.url + path, encoded=True)) as response:
                text = await response.text()
            assert response.status in (400, 404), (path, response.status)
            assert "root:" not in text, path


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("world", {**DEFAULT_WORLD, "include": SECRET_FILE}),
        ("world", {**DEFAULT_WORLD, "bots": [{**DEFAULT_WORLD["bots"][0], "file": SECRET_FILE}]}),
        ("channels", {"id": -1009, "title": "x", "path": SECRET_FILE}),
        ("users", {"id": 77, "first_name": "x", "photo": f"file://{SECRET_FILE}"}),
    ],
    ids=["world include", "bot file", "channel path", "user photo"],
)
async def test_control_requests_naming_files_are_refused(endpoint: str, body: object) -> None:
    async with SandboxServer() as sandbox, aiohttp.ClientSession() as http:
        before = sandbox.state.world()
        async with http.post(f"{sandbox.url}/_sandbox/{endpoint}", json=body) as response:
            answer = await response.json()
        assert response.status == 400 and answer["ok"] is False, answer
        assert "root:" not in json.dumps(answer)
        assert sandbox.state.world() == before


def test_world_files_naming_files_are_refused(tmp_path: Path) -> None:
    include = tmp_path / "include.json"
    include.write_text(json.dumps({**DEFAULT_WORLD, "include": SECRET_FILE}))
    linked = tmp_path / "linked.json"
    linked.symlink_to(SECRET_FILE)
    for world in (include, linked):
        done = botqueue("sandbox", "--port", "0", "--world", str(world), cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert "root:" not in done.stdout + done.stderr and "Traceback" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["include.json", "linked.json"]


def test_a_worker_binds_its_metrics_to_loopback_by_default(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BOT_OPERATIONS_QUEUE_URL": f"sqlite:///{tmp_path / 'q.db'}",
        "BOTQUEUE_WAIT_TIME": "0.2",
        "BOTQUEUE_LOG_LEVEL": "info",
    }
    args = ["worker", "--service", "tests.chaos.noop_service:NoopService", "--metrics-port", "0"]
    with subprocess.Popen(
        [sys.executable, "-m", "botqueue", *args],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    ) as worker:
        try:
            assert worker.stderr is not None
            deadline = time.monotonic() + 60
            while "observability server listening" not in (line := worker.stderr.readline()):
                assert line and time.monotonic() < deadline, "the worker did not start"
            port = int(json.loads(line)["url"].rsplit(":", 1)[1])
            assert listening(worker.pid) == [("127.0.0.1", port)]
        finally:
            worker.terminate()
            worker.wait(30)
