"""The dashboard's safety: token authentication, CSRF tokens, signed flash messages and the
security headers every response carries.

Without a token (loopback) nothing is asked; with one, a request needs ``Authorization: Bearer
…``, ``?token=…`` (which sets a cookie for the rest of the visit) or that cookie. Tokens are
compared with :func:`hmac.compare_digest`. Every POST needs the CSRF token of its session: a
random session id in an HttpOnly, SameSite=Strict cookie, and HMAC(secret, id) in the form.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

AUTH_COOKIE = "botqueue_dashboard_auth"
SESSION_COOKIE = "botqueue_dashboard_session"
FLASH_SECONDS = 120.0
"""How long a flash message's signed link stays good (it is shown once, on the redirect)."""

SESSION = web.RequestKey("session", str)
"""The request's session id (the CSRF token is derived from it)."""

HEADERS = {
    # No inline script or style anywhere in the pages, so the strict policy holds.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # ?token=… must not travel on to another site in a Referer header.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Guard:
    """Signs and checks everything the dashboard hands to a browser, with one random secret."""

    def __init__(self, token: str | None, secret: bytes | None = None) -> None:
        self.token = token
        self.secret = secret or secrets.token_bytes(32)

    def _mac(self, purpose: str, value: str) -> str:
        message = f"{purpose}:{value}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def token_matches(self, given: str) -> bool:
        """Whether ``given`` is the dashboard token (constant time)."""
        assert self.token is not None
        return hmac.compare_digest(given.encode(), self.token.encode())

    def auth_cookie(self) -> str:
        """The cookie value that stands for the token (the token itself is never stored)."""
        assert self.token is not None
        return self._mac("auth", self.token)

    def csrf_token(self, session: str) -> str:
        """The CSRF token of a session."""
        return self._mac("csrf", session)

    def csrf_matches(self, session: str, given: str) -> bool:
        """Whether ``given`` is the CSRF token of ``session`` (constant time)."""
        return hmac.compare_digest(given.encode(), self.csrf_token(session).encode())

    def sign_flash(self, text: str, level: str = "info") -> str:
        """A short-lived, signed query value carrying a flash message."""
        payload = json.dumps({"t": text, "l": level, "e": time.time() + FLASH_SECONDS})
        encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{encoded}.{self._mac('flash', encoded)}"

    def read_flash(self, value: str | None) -> tuple[str, str] | None:
        """(text, level) of a signed flash value, or None when it is forged or stale."""
        if not value or "." not in value:
            return None
        encoded, _, mac = value.rpartition(".")
        if not hmac.compare_digest(mac.encode(), self._mac("flash", encoded).encode()):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
            if float(payload["e"]) < time.time():
                return None
            return str(payload["t"]), str(payload["l"])
        except (ValueError, KeyError, TypeError):
            return None


def _cookie_flags(response: web.StreamResponse, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, samesite="Strict", path="/")


def auth_middleware(guard: Guard) -> Middleware:
    """Ask for the token on every request when one is configured: 401 without, 403 if wrong."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if guard.token is None:
            return await handler(request)
        header = request.headers.get("Authorization", "")
        query = request.query.get("token")
        cookie = request.cookies.get(AUTH_COOKIE)
        if header:
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not guard.token_matches(given.strip()):
                return _refuse(403, "wrong token")
        elif query is not None:
            if not guard.token_matches(query):
                return _refuse(403, "wrong token")
        elif cookie is None:
            return _refuse(401, "a token is required: ?token=… or Authorization: Bearer …")
        elif not hmac.compare_digest(cookie.encode(), guard.auth_cookie().encode()):
            return _refuse(403, "stale or wrong token cookie: open the page with ?token=…")
        response = await handler(request)
        if query is not None:
            _cookie_flags(response, AUTH_COOKIE, guard.auth_cookie())
        return response

    return middleware


def _refuse(status: int, text: str) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return web.Response(status=status, text=f"botqueue dashboard: {text}\n", headers=headers)


def session_middleware(guard: Guard) -> Middleware:
    """Give each browser a session id and refuse (403) a POST without its CSRF token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        session = request.cookies.get(SESSION_COOKIE, "")
        fresh = len(session) < 32
        if request.method == "POST":
            form = await request.post()
            given = form.get("csrf_token")
            if fresh or not isinstance(given, str) or not guard.csrf_matches(session, given):
                return web.Response(
                    status=403, text="botqueue dashboard: missing or bad CSRF token\n"
                )
        if fresh:
            session = secrets.token_urlsafe(32)
        request[SESSION] = session
        response = await handler(request)
        if fresh:
            _cookie_flags(response, SESSION_COOKIE, session)
        return response

    return middleware


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the security headers to every response, errors included."""
    try:
        response = await handler(request)
    except web.HTTPException as error:
        error.headers.update(HEADERS)
        raise
    response.headers.update(HEADERS)
    return response
