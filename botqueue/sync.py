"""A blocking producer for synchronous code (Django views, Flask handlers, scripts)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, TypeVar

from .operations import AnyOperation, RemoveReason
from .producer import BotQueueProducer

T = TypeVar("T")


class SyncBotQueueProducer:
    """BotQueueProducer's methods, blocking, callable without an event loop.

    It runs its own event loop on a background thread, so it also works when called from a
    thread that already runs a loop (it then blocks that thread, as any sync call would).
    Use it as a context manager or call close(); one instance is safe to share across threads.
    """

    def __init__(self, queue_url: str | None = None, dlq_url: str | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="botqueue-producer", daemon=True
        )
        self._thread.start()
        try:
            # Reads BOT_OPERATIONS_QUEUE_URL and the rest when no queue_url is given.
            self._producer = self._call(self._make(queue_url, dlq_url))
        except BaseException:
            self._stop_loop()  # a ConfigurationError must not leave the thread running
            raise

    @staticmethod
    async def _make(queue_url: str | None, dlq_url: str | None) -> BotQueueProducer:
        return BotQueueProducer(queue_url=queue_url, dlq_url=dlq_url)

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if not self._thread.is_alive():
            coro.close()
            raise RuntimeError("SyncBotQueueProducer is closed")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> SyncBotQueueProducer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the transport and stop the background loop."""
        if not self._thread.is_alive():
            return
        self._call(self._producer.aclose())
        self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def enqueue_invite_user(
        self,
        user_id: int,
        channel_id: str | int,
        subscription_id: str,
        order_id: str,
        max_retries: int = 3,
        *,
        idempotency_key: str | None = None,
        invite_mode: str | None = None,
    ) -> str:
        """Enqueue an invite; return the message id (``invite_mode``: see BotQueueProducer)."""
        return self._call(
            self._producer.enqueue_invite_user(
                user_id,
                channel_id,
                subscription_id,
                order_id,
                max_retries,
                idempotency_key=idempotency_key,
                invite_mode=invite_mode,
            )
        )

    def enqueue_remove_user(
        self,
        user_id: int,
        channel_id: str | int,
        subscription_id: str,
        reason: RemoveReason,
        max_retries: int = 3,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Enqueue a removal; return the message id."""
        return self._call(
            self._producer.enqueue_remove_user(
                user_id,
                channel_id,
                subscription_id,
                reason,
                max_retries,
                idempotency_key=idempotency_key,
            )
        )

    def enqueue_verify_permissions(
        self,
        channel_id: str | int,
        listing_id: str | None = None,
        max_retries: int = 3,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Enqueue a permission check; return the message id."""
        return self._call(
            self._producer.enqueue_verify_permissions(
                channel_id,
                listing_id,
                max_retries,
                idempotency_key=idempotency_key,
            )
        )

    def enqueue_many(self, ops: Iterable[AnyOperation]) -> list[str]:
        """Enqueue operations in batches of 10; return their message ids."""
        return self._call(self._producer.enqueue_many(list(ops)))
