"""Secure defaults for every response and request of the console.

- Sessions live in a signed cookie (Starlette's SessionMiddleware, itsdangerous): Secure, HttpOnly,
  SameSite=Strict, 8 hours. It holds the account name and the CSRF token only; the account is read again
  on every request, so disabling it ends its sessions.
- CSRF: every state change (any method but GET/HEAD/OPTIONS) made with the session cookie must carry the
  session's token, as the form field `csrf` or the header X-CSRF-Token; else 403. A bearer token (a service
  account) is not sent by a browser on its own, so it needs none.
- Headers: a strict Content-Security-Policy (nothing inline but styles from our own file; no script at
  all), no framing, no referrer, no caching of pages that show messages.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SESSION_COOKIE = "hmc_console"
SESSION_SECONDS = 8 * 3600


class SecurityHeaders:
    """Adds the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = CSP
                headers["X-Content-Type-Options"] = "nosniff"
                headers["X-Frame-Options"] = "DENY"
                headers["Referrer-Policy"] = "no-referrer"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def csrf_ok(request: Request, form: dict[str, Any] | None) -> bool:
    """Whether a state-changing request made with the session carries the session's token."""
    if request.method in SAFE_METHODS or bearer(request) is not None:
        return True
    expected = request.session.get("csrf")
    given = request.headers.get("x-csrf-token") or (str((form or {}).get("csrf") or ""))
    return isinstance(expected, str) and bool(given) and secrets.compare_digest(expected, given)


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


Endpoint = Callable[[Request], Awaitable[Any]]


class AttemptWindow:
    """Failed logins per client address in a sliding window: one address guessing across many accounts
    (which the per-account throttle of console/accounts.py does not see) is refused for a while too."""

    def __init__(self, limit: int = 20, window_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def blocked(self, address: str) -> bool:
        failures = self._failures[address]
        while failures and self.clock() - failures[0] > self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]  # the map holds only addresses that failed lately
            return False
        return len(failures) >= self.limit

    def failed(self, address: str) -> None:
        self._failures[address].append(self.clock())
