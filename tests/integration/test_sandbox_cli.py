"""``botqueue sandbox``: refuses to expose itself by accident, and serves until SIGTERM."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import click
from click.testing import CliRunner

from botqueue.cli.sandbox import is_loopback, sandbox
from botqueue.sandbox import DEFAULT_WORLD, SandboxControl

ROOT = Path(__file__).resolve().parents[2]
# botqueue.cli registers the command on its group; here it hangs off a bare one.
LAUNCH = (
    "import click, sys\n"
    "from botqueue.cli.sandbox import sandbox\n"
    "group = click.Group('botqueue')\n"
    "group.add_command(sandbox)\n"
    "group(sys.argv[1:])\n"
)


def _group() -> click.Group:
    group = click.Group("botqueue")
    group.add_command(sandbox)
    return group


def test_loopback_detection() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.8.0.1", "::1", "localhost", "[::1]"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "192.168.1.5", "example.com"]))


def test_refuses_a_non_loopback_host_without_allow_remote() -> None:
    result = CliRunner().invoke(_group(), ["sandbox", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--allow-remote" in result.output


def test_rejects_an_invalid_world_file(tmp_path: Path) -> None:
    world = tmp_path / "world.json"
    world.write_text(json.dumps({"bots": [{"token": "1:short", "id": 1, "username": "b"}]}))
    result = CliRunner().invoke(_group(), ["sandbox", "--world", str(world)])
    assert result.exit_code == 2
    assert "token" in result.output


async def test_serves_a_world_file_until_sigterm(tmp_path: Path) -> None:
    world = tmp_path / "world.json"
    world.write_text(
        json.dumps(
            {**DEFAULT_WORLD, "users": [*DEFAULT_WORLD["users"], {"id": 4242, "first_name": "Zed"}]}
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LAUNCH,
        "sandbox",
        "--port",
        "0",
        "--world",
        str(world),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        found = re.search(r"(http://127\.0\.0\.1:\d+)", line)
        assert found, line
        async with SandboxControl(found.group(1)) as control:
            assert await control.health()
            users = {user["id"] for user in (await control.world())["users"]}
            assert 4242 in users
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
