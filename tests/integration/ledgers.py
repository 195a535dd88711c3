"""The ledger fixture: one invite-link and access ledger per backend (memory, an SQLite file,
a real Redis), for the behaviour tables that must hold on every one of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botqueue.telegram.links import LinkLedger, MemoryLedger, SqliteLedger
from botqueue.telegram.links_redis import RedisLedger


@pytest.fixture(name="ledger", params=["memory", "sqlite", "redis"])
async def ledger_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[LinkLedger]:
    """A ledger on each backend in turn (Redis: tests/integration/redis_server.py's server)."""
    made: LinkLedger
    if request.param == "memory":
        made = MemoryLedger()
    elif request.param == "sqlite":
        made = SqliteLedger(str(tmp_path / "l.db"), "t")
    else:  # a real server, emptied for this test
        made = RedisLedger(request.getfixturevalue("redis_url"), "t")
    yield made
    await made.aclose()
