"""Real SQS servers for the integration tests, each started once per session on a free port.

Test modules import the ``*_fixture`` functions; pytest knows them by their short names
(``localstack_server``, ``moto_server``, ``sqs_server``, ``sqs``).

LocalStack runs on the host, without Docker, from its own virtualenv (.venv-localstack in the
project root), which this module creates and installs when it is missing or stale: it needs
Python 3.11 (newer localstack-core releases need 3.13) and a few constraints. moto's server
mode is the second, lighter implementation.

Under CI (CI=true) a server that cannot start fails the tests that need it; elsewhere they
skip with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import boto3
import pytest
from botocore.config import Config

from botqueue.transports.sqs import SqsTransport
from botqueue.transports.sqs_client import SqsClientConfig, create_client
from botqueue.transports.sqs_setup import setup_queues

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_VENV = ROOT / ".venv-localstack"
LOCALSTACK_PACKAGES = [
    "localstack-core[base-runtime]==4.13.1",
    "cbor2<6",
    "pyopenssl<26",
    "cryptography<47",
    "service_identity",
]
LOCALSTACK_PYTHON = (3, 11)
IN_CI = os.environ.get("CI", "").lower() == "true"
REGION = "us-east-1"
CREDENTIALS = ("test", "test")
START_TIMEOUT = 90.0


def unavailable(reason: str) -> NoReturn:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@dataclass
class SqsServer:
    """A running SQS-compatible server."""

    name: str
    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def client_config(self) -> SqsClientConfig:
        """botqueue client settings for this server, with test credentials."""
        return SqsClientConfig(REGION, self.endpoint, CREDENTIALS, max_attempts=3)

    def boto3_client(self) -> Any:
        """A plain boto3 SQS client for this server."""
        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS[0],
            aws_secret_access_key=CREDENTIALS[1],
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )

    def env(self) -> dict[str, str]:
        """Environment for a botqueue subprocess talking to this server."""
        return {
            "AWS_ACCESS_KEY_ID": CREDENTIALS[0],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS[1],
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SQS_ENDPOINT": self.endpoint,
        }

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for failure messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class QueuePair:
    """A main queue and its DLQ created for one test."""

    url: str
    dlq_url: str


async def create_queue_pair(server: SqsServer, prefix: str = "t") -> QueuePair:
    """A fresh, uniquely named queue and DLQ, set up as ``botqueue setup`` does."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    async with create_client(server.client_config()) as client:
        report = await setup_queues(client, queue_name=f"{name}.fifo", dlq_name=f"{name}-dlq.fifo")
    return QueuePair(report.queue_url, report.dlq_url)


async def delete_queue_pair(server: SqsServer, pair: QueuePair) -> None:
    """Delete a test's queues (best effort: the server goes away with the session anyway)."""
    async with create_client(server.client_config()) as client:
        for url in (pair.url, pair.dlq_url):
            with contextlib.suppress(Exception):
                await client.delete_queue(QueueUrl=url)


@contextlib.asynccontextmanager
async def sqs_transport(server: SqsServer, prefix: str = "t") -> AsyncIterator[SqsTransport]:
    """An open SqsTransport on fresh queues of ``server``; the queues are deleted after."""
    pair = await create_queue_pair(server, prefix)
    transport = SqsTransport(pair.url, pair.dlq_url, client_config=server.client_config())
    try:
        yield transport
    finally:
        await transport.aclose()
        await delete_queue_pair(server, pair)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerUnavailable(RuntimeError):
    """A server could not be installed or started; the message says why."""


def _python_for_localstack() -> str | None:
    if sys.version_info[:2] == LOCALSTACK_PYTHON:
        return sys.executable
    return shutil.which("python{}.{}".format(*LOCALSTACK_PYTHON))


def ensure_localstack_venv(
    venv: Path = LOCALSTACK_VENV, packages: Sequence[str] = LOCALSTACK_PACKAGES
) -> Path:
    """The python of a LocalStack virtualenv (``venv`` with ``packages``), creating or
    reinstalling it when missing or stale."""
    python = venv / "bin" / "python"
    stamp = venv / ".botqueue-packages"
    wanted = "\n".join(packages)
    with open(ROOT / ".venv-localstack.lock", "w") as lock:
        # Two test sessions at once must not install into the same folder.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return python
        base = _python_for_localstack()
        if base is None:
            raise ServerUnavailable("LocalStack 4.13 needs python3.11, which is not on PATH")
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        for step in ([base, "-m", "venv", "--clear", str(venv)], [*pip, *packages]):
            done = subprocess.run(step, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                raise ServerUnavailable(
                    f"could not install LocalStack ({' '.join(step[:4])}): {done.stderr[-2000:]}"
                )
        stamp.write_text(wanted)
    return python


def _wait_until_serving(server: SqsServer) -> None:
    # LocalStack's health endpoint reports SQS running about a second before SQS answers, so
    # only a real call counts.
    client = boto3.client(
        "sqs",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS[0],
        aws_secret_access_key=CREDENTIALS[1],
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerUnavailable(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            client.list_queues()
            return
        except Exception:
            time.sleep(0.25)
    stop(server)
    raise ServerUnavailable(
        f"{server.name} did not answer in {START_TIMEOUT:.0f} s:\n{server.log_tail()}"
    )


def _start(
    name: str, command: list[str], env: dict[str, str], folder: Path, port: int
) -> SqsServer:
    log_path = folder / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=folder
        )
    server = SqsServer(name, f"http://127.0.0.1:{port}", process, log_path)
    _wait_until_serving(server)
    return server


def stop(server: SqsServer) -> None:
    """Stop a server this module started."""
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


def localstack_env(folder: Path, port: int, services: str) -> dict[str, str]:
    """The environment of a LocalStack run from its virtualenv on loopback ``port``."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "SERVICES": services,
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "OVERRIDE_IN_DOCKER": "0",  # /.dockerenv may exist; we run on the host all the same
        "FILESYSTEM_ROOT": str(folder / "fs"),
        "DISABLE_EVENTS": "1",
        "DNS_ADDRESS": "0",
        "SQS_ENDPOINT_STRATEGY": "path",
        "EAGER_SERVICE_LOADING": "1",
    }


def start_localstack(
    folder: Path, port: int | None = None, extra_env: dict[str, str] | None = None
) -> SqsServer:
    """LocalStack (SQS only) on ``port`` (default: a free one), run directly from
    .venv-localstack, answering. A restart on the same port keeps the queue URLs;
    ``extra_env`` adds LocalStack settings (e.g. PERSISTENCE)."""
    python = ensure_localstack_venv()
    port = free_port() if port is None else port
    env = {**localstack_env(folder, port, "sqs"), **(extra_env or {})}
    return _start("localstack", [str(python), "-m", "localstack.runtime.main"], env, folder, port)


def start_moto(folder: Path) -> SqsServer:
    """moto's server mode on a free port, answering."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(folder)}
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _start("moto", command, env, folder, port)


def _session_server(
    start: Callable[[Path], SqsServer], folder: pytest.TempPathFactory, name: str
) -> Iterator[SqsServer]:
    try:
        server = start(folder.mktemp(name))
    except ServerUnavailable as error:
        unavailable(str(error))
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="session", name="localstack_server")
def localstack_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqsServer]:
    """LocalStack for the session (fails under CI, skips elsewhere, if it cannot start)."""
    yield from _session_server(start_localstack, tmp_path_factory, "localstack")


@pytest.fixture(scope="session", name="moto_server")
def moto_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqsServer]:
    """moto's server for the session (fails under CI, skips elsewhere, if it cannot start)."""
    yield from _session_server(start_moto, tmp_path_factory, "moto")


@pytest.fixture(params=["localstack", "moto"], name="sqs_server")
def sqs_server_fixture(request: pytest.FixtureRequest) -> SqsServer:
    """Each real SQS server in turn."""
    server: SqsServer = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture(name="sqs")
async def sqs_fixture(sqs_server: SqsServer) -> AsyncIterator[SqsTransport]:
    """An open SqsTransport on fresh queues of each server in turn."""
    async with sqs_transport(sqs_server) as transport:
        yield transport
