"""Real parts the chaos scenarios share: a LocalStack of a scenario's own."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from tests.integration import sqs_servers


@contextlib.asynccontextmanager
async def localstack(folder: Path) -> AsyncIterator[sqs_servers.SqsServer]:
    """LocalStack (SQS) on a free loopback port, stopped at the end (about 15 s to start).

    Under pytest a LocalStack that cannot start skips (fails under CI); elsewhere it raises.
    """
    try:
        server = await asyncio.to_thread(_start, folder)
    except sqs_servers.ServerUnavailable as error:
        if "PYTEST_CURRENT_TEST" in os.environ:
            sqs_servers.unavailable(str(error))
        raise
    try:
        yield server
    finally:
        await asyncio.to_thread(sqs_servers.stop, server)


def _start(folder: Path) -> sqs_servers.SqsServer:
    folder.mkdir(parents=True, exist_ok=True)
    return sqs_servers.start_localstack(folder)
