"""The console's ASGI application: the pages (console/pages.py) and the API (console/api.py) on one store.

`create_app` wires what the console needs; `hmc-broker console` (console/cli.py) and `hmc-broker demo
--console` give it the configured store, the pipeline for dry runs and a worker to replay through.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from broker.config import Settings
from broker.store import Session, queries, sessionmaker
from console import accounts
from console.accounts import Identity, LoginRefused
from console.operations import REFUSALS, Forbidden, NotFound, QueueCounts
from console.pretty import pretty_xml
from console.replays import Replays
from console.security import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    AttemptWindow,
    SecurityHeaders,
    bearer,
    csrf_ok,
    csrf_token,
)

if TYPE_CHECKING:
    from console.oidc import SingleSignOn

HERE = Path(__file__).parent
log = logging.getLogger(__name__)


@dataclass
class Console:
    """What every request of the console uses."""

    settings: Settings
    sessions: sessionmaker[Session]
    replays: Replays
    partners: dict[str, str] = field(default_factory=dict)  # partner -> the queue it consumes
    workers: list[str] = field(default_factory=list)  # the broker's own input queues (consumers: workers)
    counts: QueueCounts = lambda _queues: {}
    sso: SingleSignOn | None = None  # OpenID Connect login, when an issuer is configured (console/oidc.py)
    attempts: AttemptWindow = field(default_factory=AttemptWindow)  # failed logins per client address
    templates: Environment = field(default_factory=lambda: _templates())

    @property
    def dormant_after(self) -> timedelta:
        return self.settings.dormant_after

    def identity(self, request: Request) -> Identity | None:
        """The account of a bearer token or of the session; None when neither (or it was disabled)."""
        token = bearer(request)
        with self.sessions() as session:
            if token is not None:
                try:
                    found = accounts.by_token(session, token, self.dormant_after)
                finally:
                    session.commit()
                return found
            name = request.session.get("user")
            return accounts.current(session, name) if isinstance(name, str) else None

    def render(self, request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        page = self.templates.get_template(template).render(
            csrf=csrf_token(request),
            user=values.pop("user", None),
            path=request.url.path,
            sso=self.sso is not None,
            **values,
        )
        return HTMLResponse(page, status_code=status)


def _templates() -> Environment:
    """Jinja2 with autoescaping on for every template: each message field is text, never markup."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
    env.filters["pretty"] = pretty_xml
    return env


Handler = Callable[[Request, Console, Identity, dict[str, Any]], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page: to the login page without a session; 403 without the token or the role; a refusal is shown
    on an error page that says what to change."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        console: Console = request.app.state.console
        identity = console.identity(request) if bearer(request) is None else None
        if identity is None:
            return RedirectResponse("/login", status_code=303)
        form = dict(await request.form()) if request.method == "POST" else {}
        if not csrf_ok(request, form):
            return console.render(request, "error.html", 403, user=identity, error="the form's CSRF token is missing")
        try:
            return await handler(request, console, identity, form)
        except Forbidden as e:
            return console.render(request, "error.html", 403, user=identity, error=str(e))
        except NotFound as e:
            return console.render(request, "error.html", 404, user=identity, error=str(e))
        except REFUSALS as e:
            return console.render(request, "error.html", 400, user=identity, error=str(e))

    return run


def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """An API operation: 401 without a token or session, 403 without the CSRF token (with a session) or the
    role, 400 with the refusal's message, 404 when not found."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        console: Console = request.app.state.console
        try:
            identity = console.identity(request)
        except LoginRefused as e:
            return _problem(401, str(e))
        if identity is None:
            return _problem(401, "log in, or send a service account's token as Authorization: Bearer TOKEN")
        body: dict[str, Any] = {}
        if request.method == "POST":
            try:
                raw = await request.body()
                body = json.loads(raw) if raw else {}
            except ValueError:
                return _problem(400, "the body is not JSON")
            if not isinstance(body, dict):
                return _problem(400, "the body is a JSON object")
        if not csrf_ok(request, body):
            return _problem(403, "a state change with a session needs its CSRF token (header X-CSRF-Token)")
        try:
            return await handler(request, console, identity, body)
        except Forbidden as e:
            return _problem(403, str(e))
        except NotFound as e:
            return _problem(404, str(e))
        except REFUSALS as e:
            return _problem(400, str(e))

    return run


def _problem(status: int, detail: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="hmc-broker"'} if status == 401 else None
    return JSONResponse({"status": status, "detail": detail}, status_code=status, headers=headers)


async def healthz(_request: Request) -> Response:
    """Liveness, for the container's health check: the process serves requests. No login, no store."""
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Readiness: the store answers (a load balancer sends no operator to a console that cannot)."""
    console: Console = request.app.state.console
    try:
        with console.sessions() as session:
            queries.ping(session)
    except Exception as e:  # any failure to reach the store means not ready; the reason is logged, not served
        log.warning("console not ready: the store does not answer (%s)", type(e).__name__)
        return JSONResponse({"status": "unavailable"}, status_code=503)
    return JSONResponse({"status": "ready"})


@contextlib.asynccontextmanager
async def _closing(console: Console) -> AsyncIterator[None]:
    yield
    console.replays.close()


def create_app(console: Console, secret_key: str | None = None) -> Starlette:
    """The console on `console`'s store. Without `secret_key` (HMC_CONSOLE_SECRET) a random one is made:
    sessions then end when the console restarts."""
    from console import api as api_routes
    from console import pages

    if not secret_key:
        log.warning("HMC_CONSOLE_SECRET is not set: sessions end when the console restarts")
        secret_key = secrets.token_urlsafe(32)
    app = Starlette(
        routes=[
            *pages.ROUTES,
            Mount("/api/v1", routes=api_routes.ROUTES),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            Route("/", lambda _r: RedirectResponse("/flow", status_code=303)),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(
                SessionMiddleware,
                secret_key=secret_key,
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_SECONDS,
                # The IdP's redirect back is a cross-site GET: a Strict cookie would stay behind (console/oidc.py).
                same_site="lax" if console.sso is not None else "strict",
                https_only=True,
            ),
        ],
        lifespan=lambda _app: _closing(console),
    )
    app.state.console = console
    return app
