"""SandboxControl: a small async client for the sandbox's control API (tests, demo, scripts)."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import Any

import aiohttp

from .control import PREFIX

Rights = Mapping[str, bool] | str | None
"""Bot rights for set_bot_rights: a mapping of rights, None or "kicked"."""


class SandboxControlError(Exception):
    """The control API refused a request; ``error`` is its reason, ``status`` the HTTP status."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(f"{status}: {error}")
        self.status = status
        self.error = error


class SandboxControl:
    """``async with SandboxControl("http://127.0.0.1:8081") as control: await control.reset()``."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxControl:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _request(
        self, method: str, path: str, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = f"{self.base_url}{PREFIX}/{path}"
        kwargs: dict[str, Any] = {"params": params}
        if method != "GET":
            kwargs["json"] = body
        async with self._session.request(method, url, **kwargs) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                error = data.get("error") if isinstance(data, dict) else None
                raise SandboxControlError(response.status, str(error or data))
            return data

    async def health(self) -> bool:
        """Whether the sandbox answers."""
        return bool((await self._request("GET", "health"))["ok"])

    async def reset(self) -> None:
        """Back to the starting world, with no faults, flood limit or history."""
        await self._request("POST", "reset")

    async def world(self) -> dict[str, Any]:
        """The current world as a world file."""
        world: dict[str, Any] = await self._request("GET", "world")
        return world

    async def load_world(self, world: Mapping[str, Any]) -> None:
        """Replace the world."""
        await self._request("POST", "world", dict(world))

    async def add_channel(self, channel: Mapping[str, Any]) -> None:
        """Add or replace one chat (world-file format)."""
        await self._request("POST", "channels", dict(channel))

    async def add_user(self, user: Mapping[str, Any]) -> None:
        """Add or replace one user (world-file format)."""
        await self._request("POST", "users", dict(user))

    async def update_user(self, user_id: int, **changes: Any) -> dict[str, Any]:
        """Change some of a user's fields (``known_to_bot=False``, ...); returns the user."""
        data = await self._request("PATCH", f"users/{user_id}", changes)
        user: dict[str, Any] = data["user"]
        return user

    async def set_chat_state(self, chat: int | str, state: str) -> None:
        """How Telegram's servers treat a chat: "active", "inaccessible" or "deleted"."""
        await self._request("PATCH", f"channels/{chat}/state", {"state": state})

    async def set_bot_rights(self, chat: int | str, rights: Rights) -> None:
        """Set the bot's rights in a chat: a mapping of rights, None (not a member) or "kicked"."""
        value = dict(rights) if isinstance(rights, Mapping) else rights
        await self._request("PATCH", f"channels/{chat}/bot", {"rights": value})

    async def join(self, user_id: int, invite_link: str) -> str:
        """A user opens an invite link; returns "member" or "pending", raises if refused."""
        data = await self._request("POST", "join", {"user_id": user_id, "invite_link": invite_link})
        return str(data["status"])

    async def members(self, chat: int | str) -> dict[str, Any]:
        """Who is in a chat: creator, admins, members, restricted, banned, pending."""
        roster: dict[str, Any] = await self._request("GET", f"channels/{chat}/members")
        return roster

    async def messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Messages bots sent (to one chat if given), oldest first."""
        params = None if chat_id is None else {"chat_id": str(chat_id)}
        sent: list[dict[str, Any]] = await self._request("GET", "messages", params=params)
        return sent

    async def requests(self) -> dict[str, Any]:
        """{"methods": {name: count}, "total": n, "rate_limited": n}."""
        counts: dict[str, Any] = await self._request("GET", "requests")
        return counts

    async def inject_fault(
        self,
        method: str,
        error_code: int,
        description: str | None = None,
        count: int = 1,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` ("*" for any) answer an error."""
        body: dict[str, Any] = {"method": method, "error_code": error_code, "count": count}
        if description is not None:
            body["description"] = description
        if retry_after is not None:
            body["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            body["migrate_to_chat_id"] = migrate_to_chat_id
        await self._request("POST", "faults", body)

    async def inject_error(
        self,
        method: str,
        description: str,
        count: int = 1,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        """Make the next ``count`` calls of ``method`` answer Telegram's ``description``, with
        the code its prefix carries ("Bad Request: ..." 400, "Forbidden: ..." 403)."""
        body: dict[str, Any] = {"method": method, "description": description, "count": count}
        if retry_after is not None:
            body["retry_after"] = retry_after
        if migrate_to_chat_id is not None:
            body["migrate_to_chat_id"] = migrate_to_chat_id
        await self._request("POST", "faults", body)

    async def clear_faults(self) -> None:
        """Forget every injected fault, latency and hang."""
        await self._request("DELETE", "faults")

    async def set_latency(
        self, method: str, seconds: float, *, jitter: float = 0.0, request_share: float = 0.0
    ) -> None:
        """Delay every call of ``method`` ("*" for all) by ``seconds`` ± ``jitter`` (a
        fraction), ``request_share`` of it before the flood check; 0 removes the delay."""
        body = {"method": method, "seconds": seconds, "jitter": jitter}
        await self._request("POST", "latency", {**body, "request_share": request_share})

    async def hang(self, method: str, count: int = 1) -> None:
        """Make the next ``count`` calls of ``method`` never answer."""
        await self._request("POST", "hang", {"method": method, "count": count})

    async def set_kick_seconds(self, seconds: float) -> None:
        """Make a plain unban of a member take ``seconds`` (TDLib's 1.0 s; 0, the default, is
        instant), the user "kicked" meanwhile."""
        await self._request("POST", "kick", {"seconds": seconds})

    async def set_flood(self, rate_per_second: int | None) -> None:
        """Limit calls per token per second (None switches flood control off)."""
        await self._request("POST", "flood", {"rate_per_second": rate_per_second})

    async def migrate(self, chat_id: int | str, to_chat_id: int) -> None:
        """Move a chat to a new id; the old id then answers 400 with migrate_to_chat_id."""
        await self._request("POST", "migrate", {"chat_id": chat_id, "to_chat_id": to_chat_id})

    async def advance_clock(self, seconds: float) -> int:
        """Move the sandbox's wall clock forward; returns its new time (Unix seconds)."""
        data = await self._request("POST", "clock", {"advance": seconds})
        return int(data["now"])
