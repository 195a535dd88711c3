"""Waiting for something unless the consumer stops first (the bot's pause, a service start)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable


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
