"""The image itself: built from deploy/Dockerfile with docker or podman, then run against the
Bot API sandbox on the host's network: it performs an invite, its HEALTHCHECK passes, PID 1 is
``botqueue worker`` as the unprivileged user, and ``stop -t 45`` lets an operation that takes
longer than the engines' default 10 s finish before the container exits 0.

Opt-in, because the test command cannot provide what it needs: a container engine that runs
here and the base image from a registry. Set BOTQUEUE_TEST_PYTHON_IMAGE to the base to build
on (``python:3.12-slim``, or any local image with Python >= 3.11 and venv) and, to choose,
BOTQUEUE_CONTAINER_ENGINE (docker or podman). Once asked for, a missing engine or base image
is a failure under CI and a skip elsewhere. tests/deploy/test_install.py runs the image's
install step and commands without a container on every run.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from botqueue.sandbox import SandboxControl, SandboxServer
from tests.integration.sqs_servers import free_port, unavailable

from .artefacts import DOCKERFILE, ROOT

pytestmark = pytest.mark.timeout(900)

BASE = os.environ.get("BOTQUEUE_TEST_PYTHON_IMAGE", "")
PREMIUM, DAN = "-1001000000001", 1004
SLOW_SEND = 14.0  # seconds the invite's direct message takes: longer than a 10 s stop timeout


@dataclass
class Image:
    """A built image and the engine that has it."""

    engine: str
    tag: str

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        """Run an engine command; its output."""
        done = subprocess.run([self.engine, *args], capture_output=True, text=True, timeout=timeout)
        if check:
            assert done.returncode == 0, f"{self.engine} {' '.join(args)}:\n{done.stderr}"
        return done.stdout

    def inspect(self) -> dict[str, Any]:
        """The image's configuration (with its Healthcheck, which podman keeps beside it)."""
        found = json.loads(self.run("image", "inspect", self.tag))[0]
        config: dict[str, Any] = found["Config"]
        config.setdefault("Healthcheck", found.get("Healthcheck"))
        return config


def _engine() -> str:
    wanted = os.environ.get("BOTQUEUE_CONTAINER_ENGINE")
    for name in [wanted] if wanted else ["docker", "podman"]:
        if (path := shutil.which(name)) is None:
            continue
        info = subprocess.run([path, "info"], capture_output=True, text=True, timeout=60)
        if info.returncode == 0:
            return path
    unavailable(f"no working container engine ({wanted or 'docker or podman'})")


@pytest.fixture(scope="module")
def image() -> Iterator[Image]:
    """deploy/Dockerfile built on BOTQUEUE_TEST_PYTHON_IMAGE, removed afterwards."""
    if not BASE:
        pytest.skip("set BOTQUEUE_TEST_PYTHON_IMAGE (e.g. python:3.12-slim) to build the image")
    engine = _engine()
    have = subprocess.run([engine, "image", "inspect", BASE], capture_output=True, timeout=60)
    if have.returncode != 0:
        pulled = subprocess.run([engine, "pull", BASE], capture_output=True, text=True, timeout=300)
        if pulled.returncode != 0:
            said = (pulled.stdout + pulled.stderr).strip().splitlines() or ["(nothing said)"]
            errors = [line for line in said if "error" in line.lower()] or said
            unavailable(f"base image {BASE} not available: {errors[-1][-400:]}")
    built = Image(engine, f"localhost/botqueue-test:{uuid.uuid4().hex[:8]}")
    command = ["build", "-f", str(DOCKERFILE), "--build-arg", f"PYTHON_IMAGE={BASE}"]
    command += ["--network=host", "-t", built.tag]
    if os.path.basename(engine) == "podman":
        command += ["--format", "docker"]  # OCI images have no HEALTHCHECK
    built.run(*command, str(ROOT), timeout=720)
    try:
        yield built
    finally:
        built.run("image", "rm", "-f", built.tag, check=False)


def test_the_image_is_configured_as_documented(image: Image) -> None:
    config = image.inspect()
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["botqueue"] and config["Cmd"] == ["worker"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"] == ["CMD", "botqueue", "health", "--quiet"]
    assert list(config["Volumes"]) == ["/var/lib/botqueue"]
    assert "BOTQUEUE_METRICS_PORT=9100" in config["Env"]


def test_the_image_holds_no_build_leftovers(image: Image) -> None:
    script = (
        "import importlib.util as u, os, sys\n"
        "assert sys.prefix == '/opt/botqueue', sys.prefix\n"
        "for name in ('pip', 'setuptools', 'pytest', 'mypy'):\n"
        "    assert u.find_spec(name) is None, name\n"
        "assert not os.path.exists('/src')\n"
        "print('clean')\n"
    )
    out = image.run(
        "run", "--rm", "--entrypoint", "/opt/botqueue/bin/python", image.tag, "-c", script
    )
    assert out.strip() == "clean"


async def _engine_async(image: Image, *args: str, within: float = 120) -> tuple[int, str]:
    """Run an engine command without blocking the sandbox: (exit status, stdout); stderr
    (where podman also reports what it cannot do without systemd) only when it fails, or for
    ``logs``, which gives the container's stderr (the worker's log) there."""
    process = await asyncio.create_subprocess_exec(
        image.engine, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), within)
    assert process.returncode is not None
    said = out.decode(errors="replace")
    if process.returncode or args[0] == "logs":
        said += err.decode(errors="replace")
    return process.returncode, said


async def _until_ok(image: Image, *args: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while (result := await _engine_async(image, *args))[0] != 0:
        assert time.monotonic() < deadline, result[1]
        await asyncio.sleep(0.5)


async def test_the_container_works_and_stops_gracefully(image: Image) -> None:
    volume, name = (f"botqueue-test-{uuid.uuid4().hex[:8]}" for _ in range(2))
    health = image.inspect()["Healthcheck"]["Test"][1:]
    enqueue = ["botqueue", "enqueue", "invite", "--user-id", str(DAN), "--channel", PREMIUM]
    enqueue += ["--subscription-id", "c1", "--order-id", "o1"]
    async with SandboxServer() as sandbox, SandboxControl(sandbox.url) as control:
        common = ["--network=host", "-v", f"{volume}:/var/lib/botqueue"]
        env = {
            "TELEGRAM_BOT_TOKEN": sandbox.token,
            "TELEGRAM_API_BASE_URL": sandbox.url,
            "TELEGRAM_REQUEST_TIMEOUT": "30",
            "BOTQUEUE_METRICS_PORT": str(free_port()),
            "BOTQUEUE_WAIT_TIME": "1",
        }
        flags = [flag for item in env.items() for flag in ("-e", "=".join(item))]
        try:
            code, out = await _engine_async(
                image, "run", "-d", "--name", name, *common, *flags, image.tag
            )
            assert code == 0, out
            await _until_ok(image, "exec", name, *health)  # the image's own HEALTHCHECK
            code, pid1 = await _engine_async(image, "exec", name, "cat", "/proc/1/cmdline")
            assert pid1.split("\0")[1:3] == ["/opt/botqueue/bin/botqueue", "worker"], pid1
            code, uid = await _engine_async(image, "exec", name, "id", "-u")
            assert uid.strip() == "10001"
            # An invite whose direct message takes SLOW_SEND s; stop while it is on its way.
            await control.set_latency("sendMessage", SLOW_SEND)
            code, out = await _engine_async(image, "exec", name, *enqueue)
            assert code == 0, out
            deadline = time.monotonic() + 60
            while (await control.requests())["methods"].get("sendMessage", 0) < 1:
                assert time.monotonic() < deadline, "the invite never reached sendMessage"
                await asyncio.sleep(0.1)
            started = time.monotonic()
            code, out = await _engine_async(image, "stop", "-t", "45", name, within=60)
            took = time.monotonic() - started
            assert code == 0, out
            state = json.loads((await _engine_async(image, "inspect", name))[1])[0]["State"]
            _, logs = await _engine_async(image, "logs", name)
            messages = await control.messages(chat_id=DAN)
            code, stats = await _engine_async(
                image, "run", "--rm", *common, image.tag, "stats", "--json"
            )
        finally:
            await _engine_async(image, "rm", "-f", name)
            await _engine_async(image, "volume", "rm", "-f", volume)
    assert state["ExitCode"] == 0, logs
    assert 10 < took < 45, took  # the engines' default stop timeout, 10 s, would have cut it
    assert len(messages) == 1 and "https://t.me/+" in messages[0]["text"]
    assert '"worker stopped"' in logs
    assert json.loads(stats.strip().splitlines()[-1]) == {
        "visible": 0,
        "in_flight": 0,
        "dead_letters": 0,
        "oldest_age_seconds": 0.0,
    }
