"""Waiting for something unless the consumer stops first: the bot's pause, the service's
start, a long poll."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Coroutine
from typing import Any

from ..transports.base import ReceivedMessage


async def first_of(work: Awaitable[object], stop: asyncio.Event) -> bool:
    """Await ``work`` unless ``stop`` is set first; True when ``work`` finished.

    ``work`` is cancelled when ``stop`` wins (or this task is cancelled); what it raised is
    raised here.
    """
    if stop.is_set():
        if asyncio.iscoroutine(work):
            work.close()
        return False
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if task.cancelled():
        return False
    task.result()
    return True


async def receive_unless_stopped(
    receive: Coroutine[Any, Any, list[ReceivedMessage]], stop: asyncio.Event
) -> list[ReceivedMessage]:
    """The messages ``receive`` returns, or none if ``stop`` is set first (the receive is then
    cancelled; transports hand back anything they had claimed)."""
    received = asyncio.ensure_future(receive)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({received, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not received.done():
        received.cancel()
    try:
        return await received
    except asyncio.CancelledError:
        if received.cancelled() and not _cancelling():
            return []
        raise


def _cancelling() -> bool:
    # True when it is this task, not the receive, that is being cancelled.
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
