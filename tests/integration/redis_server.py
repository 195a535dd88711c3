"""A real Redis (or Valkey) server for the shared flood budget tests, on a free port.

The server is ``redis-server`` or ``valkey-server`` from PATH. ``ensure_redis_server()``
installs Debian's package when neither is there and the machine allows it (root with
apt-get); ``python3 dev.py test`` calls it before pytest, outside the per-test timeout.

Test modules import ``redis_server_fixture`` (module-scoped) and ``redis_url_fixture`` (a
flushed database per test). Under CI (CI=true) a server that cannot start fails the tests
that need it; elsewhere they skip with the reason.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.apt import ensure_from_debian
from tests.integration.sqs_servers import free_port, unavailable

BINARIES = ("redis-server", "valkey-server")
DEBIAN_PACKAGES = ("redis-server", "valkey-server")
START_TIMEOUT = 15.0


def server_binary() -> str | None:
    """The first Redis-compatible server binary on PATH."""
    for name in BINARIES:
        if found := shutil.which(name):
            return found
    return None


def ensure_redis_server() -> str | None:
    """A server binary, installing Debian's package as root when there is none."""
    return ensure_from_debian(server_binary, DEBIAN_PACKAGES, "redis-server or valkey-server")


@dataclass
class RedisServer:
    """A Redis server process of the tests; ``stop()`` and ``start()`` keep its port."""

    binary: str
    folder: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """redis://127.0.0.1:port/0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (no persistence) and wait until it answers PING."""
        import redis

        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        with open(self.folder / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and self.process.poll() is None:
            with contextlib.suppress(redis.ConnectionError):
                if client.ping():
                    client.close()
                    return
            time.sleep(0.05)
        client.close()
        self.stop()
        log_text = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{self.binary} did not start:\n{log_text}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def start_redis(folder: Path) -> RedisServer:
    """A started server in ``folder``, or the tests skip (fail under CI) saying why."""
    binary = server_binary()
    if binary is None:
        unavailable("no redis-server or valkey-server on PATH (python3 dev.py test installs it)")
    server = RedisServer(binary, folder)
    try:
        server.start()
    except RuntimeError as error:
        unavailable(str(error))
    return server


@pytest.fixture(scope="module", name="redis_server")
def redis_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for the module's tests."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(name="redis_url")
def redis_url_fixture(redis_server: RedisServer) -> str:
    """The module's server, emptied for this test."""
    import redis

    with redis.Redis(port=redis_server.port) as client:
        client.flushall()
    return redis_server.url
