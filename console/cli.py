"""`hmc-broker console` and `hmc-broker users`: serve the operator console, and manage its local accounts.

broker/cli.py lists both in EDGES, so neither `hmc-broker run` nor `--help` imports the web stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

try:  # the web stack is an extra: say how to get it rather than which module is missing
    import starlette  # noqa: F401
except ModuleNotFoundError as e:
    raise ModuleNotFoundError(f"the console needs its extra: pip install 'hmc-broker[console]' ({e})") from None

import typer
from rich.console import Console as Rich
from rich.markup import escape
from rich.table import Table

from broker.config import Settings
from broker.store import Session, sessionmaker
from console import accounts
from console.app import Console
from console.replays import Replays
from replay import audit
from replay.replay import Replayer, ReplayError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from broker.store.tables import AccountRow

users_app = typer.Typer(help="The console's local accounts (argon2 password hashes) and service accounts.")


def _store(settings: Settings) -> sessionmaker[Session]:
    from broker.bootstrap import store

    return store(settings)  # migrates: the accounts table is migration 0005's


def build(settings: Settings, sessions: sessionmaker[Session], live: Callable[[], Replayer] | None = None) -> Console:
    """The console on `settings`' store and RabbitMQ; `live` gives the replayer real replays publish through
    (default: a worker of its own on HMC_AMQP_URL, made at the first replay)."""
    from broker.bootstrap import catalog
    from broker.pipeline import Pipeline

    offline = Replayer(sessions, Pipeline(settings, catalog(settings)))
    in_process = settings.amqp_url.startswith("memory://")

    def own_worker() -> Replayer:
        if in_process:
            raise ReplayError("replay publishes through RabbitMQ, and HMC_AMQP_URL is memory://: only dry runs here")
        from broker.bootstrap import worker

        return Replayer.of(worker(settings))

    console = Console(settings, sessions, Replays(offline, live or own_worker))
    if settings.console_oidc_issuer:
        from console.oidc import SingleSignOn

        console.sso = SingleSignOn(settings, os.environ.get("HMC_CONSOLE_OIDC_SECRET") or None)  # "": a public client
    if not in_process:
        from adapters.amqp.topology import SIDES, Names
        from adapters.amqp.transport import partner_queues, read_queue_counts

        names = Names(settings.prefix)
        console.partners = partner_queues(settings)
        console.workers = [q for side in SIDES for q in names.inbound_queues(side, settings.partitions)]
        console.counts = lambda queues: read_queue_counts(settings, queues)
    return console


def serve(console: Console, host: str, port: int) -> None:
    import uvicorn

    from console.app import create_app

    app = create_app(console, os.environ.get("HMC_CONSOLE_SECRET"))
    Rich(stderr=True).print(f"console on http://{host}:{port}/ (Ctrl-C stops it)")
    # Access log lines hold method, path and status: no patient identifier is ever in a path (searches
    # on a patient and reveals are POSTs).
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=True, proxy_headers=True)


@contextlib.contextmanager
def in_thread(app: Starlette) -> Iterator[str]:
    """The app served by uvicorn on a free port of 127.0.0.1 in a thread of this process, for the browser
    test and the benchmark; its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="console", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError("the console did not start within 10 s")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def console_command(
    host: Annotated[str | None, typer.Option(help="listen on (default: HMC_CONSOLE_HOST, 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default: HMC_CONSOLE_PORT, 8400)")] = None,
) -> None:
    """The operator console: a web UI and an HTTP API (/api/v1) on the configured store and RabbitMQ."""
    from broker.observability.logs import for_a_command

    for_a_command()
    settings = Settings.from_env()
    serve(build(settings, _store(settings)), host or settings.console_host, port or settings.console_port)


def serve_demo(settings: Settings, port: int) -> None:
    """The console on the demo's store, with an account made for this run (its password printed once).
    Replays publish through a worker of the console's own on the demo's transport (in-process by default)."""
    import secrets

    from broker.bootstrap import worker

    sessions = _store(settings)
    password = secrets.token_urlsafe(12)
    with sessions() as session:
        name = f"demo-{secrets.token_hex(2)}"
        accounts.add_person(session, name, password, [accounts.ADMIN])
        _record(session, "add", {"account": name, "kind": "person", "roles": [accounts.ADMIN], "demo": True})
        session.commit()
    console = build(settings, sessions, live=lambda: Replayer.of(worker(settings)))
    Rich(stderr=True).print(f"log in as [bold]{name}[/] with password [bold]{password}[/] (admin, this demo only)")
    serve(console, settings.console_host, port)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


def _record(session: Session, what: str, details: dict[str, object]) -> None:
    """Account changes are audited like every other change, under the OS user who ran the command."""
    who = audit.Actor(audit.os_user_name(), f"users {what}")
    audit.record(session, who, "account", {"op": what, **details})


def _friendly(action: Callable[[], None]) -> None:
    try:
        action()
    except accounts.AccountError as e:
        Rich(stderr=True).print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None


@users_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="account name (e.g. the person's HSA-id or user id)")],
    role: Annotated[
        list[str], typer.Option("--role", "-r", help="viewer, operator, privacy, admin or invoice:CUSTOMER (repeat)")
    ],
    service: Annotated[bool, typer.Option("--service", help="a service account with a bearer token")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Add an account: a person (asked for a password) or, with --service, an API client (prints its token)."""
    settings = Settings.from_env()

    def run() -> None:
        with _store(settings)() as session:
            roles = [r for item in role for r in item.split(",")]
            if service:
                row, token = accounts.add_service(session, name, roles)
                _record(session, "add", {"account": name, "kind": "service", "roles": row.roles})
                session.commit()
                typer.echo(token)
                Rich(stderr=True).print("the token above is shown once: give it to the service as a Bearer token")
                return
            row = accounts.add_person(session, name, _password(password_stdin), roles)
            _record(session, "add", {"account": name, "kind": "person", "roles": row.roles})
            session.commit()

    _friendly(run)


@users_app.command("list")
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="the accounts as one JSON array on stdout")] = False,
) -> None:
    """The accounts, their roles, their state and when each was last used.

    An account unused for HMC_CONSOLE_DORMANT_DAYS shows as disabled (unused) even before its next login or
    `users disable-dormant` records it: it can do nothing, in the console or as an export's --operator."""
    settings = Settings.from_env()
    from broker.store import accounts as account_rows
    from broker.store.unit_of_work import now

    at = now()
    with _store(settings)() as session:
        listed: list[dict[str, Any]] = [
            {
                "name": r.name,
                "kind": r.kind,
                "roles": list(r.roles),
                "state": "active" if account_rows.enabled(r, settings.dormant_after, at) else _disabled(r),
                "created": r.created_at.isoformat()[:19],
                "last_used": r.last_used_at.isoformat()[:19] if r.last_used_at else None,
            }
            for r in account_rows.listing(session)
        ]
    if as_json:
        typer.echo(json.dumps(listed))
        return
    table = Table(header_style="bold")
    for column in ("name", "kind", "roles", "state", "created", "last used"):
        table.add_column(column)
    for a in listed:
        table.add_row(
            escape(a["name"]), a["kind"], ", ".join(a["roles"]), a["state"], a["created"], a["last_used"] or "never"
        )
    Rich(width=None if sys.stdout.isatty() else 240).print(table)  # a pipe gets whole lines


def _disabled(row: AccountRow) -> str:
    """How an account that can do nothing is listed: disabled, or unused too long and not yet recorded so."""
    return "disabled" if row.disabled else "disabled (unused)"


@users_app.command("disable")
def disable_user(name: Annotated[str, typer.Argument()]) -> None:
    """Disable an account: its sessions end at their next request, its token stops working."""
    settings = Settings.from_env()

    def run() -> None:
        with _store(settings)() as session:
            accounts.disable(session, name)
            _record(session, "disable", {"account": name})
            session.commit()

    _friendly(run)


@users_app.command("roles")
def set_roles(
    name: Annotated[str, typer.Argument()],
    role: Annotated[
        list[str], typer.Option("--role", "-r", help="viewer, operator, privacy, admin or invoice:CUSTOMER (repeat)")
    ],
) -> None:
    """Give an account exactly these roles, e.g. invoice:1001 to who exports customer 1001's invoice data,
    in the console and with `hmc-broker invoice export --operator NAME` alike (audited)."""
    settings = Settings.from_env()

    def run() -> None:
        with _store(settings)() as session:
            before, after = accounts.set_roles(session, name, [r for item in role for r in item.split(",")])
            _record(session, "roles", {"account": name, "before": before, "roles": after})
            session.commit()
        Rich(stderr=True).print(f"{escape(name)}: {', '.join(after)}")

    _friendly(run)


@users_app.command("disable-dormant")
def disable_dormant() -> None:
    """Disable every account unused for HMC_CONSOLE_DORMANT_DAYS (365): the access routine, for a schedule."""
    settings = Settings.from_env()
    with _store(settings)() as session:
        names = accounts.disable_dormant(session, settings.dormant_after)
        if names:
            _record(session, "disable-dormant", {"accounts": names, "days": settings.console_dormant_days})
        session.commit()
    Rich(stderr=True).print(f"disabled {len(names)} account(s) unused for {settings.console_dormant_days} days"
                            + (f": {escape(', '.join(names))}" if names else ""))  # fmt: skip


@users_app.command("passwd")
def set_password(
    name: Annotated[str, typer.Argument()],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")] = False,
) -> None:
    """Set a person's password; this also enables the account again (e.g. after a year unused)."""
    settings = Settings.from_env()

    def run() -> None:
        with _store(settings)() as session:
            accounts.set_password(session, name, _password(password_stdin))
            _record(session, "passwd", {"account": name})
            session.commit()

    _friendly(run)


def bench_command(
    rows: Annotated[int, typer.Option("--rows", help="messages to seed into an empty store")] = 1_000_000,
    repeat: Annotated[int, typer.Option("--repeat", help="requests of each page")] = 20,
    reuse: Annotated[bool, typer.Option("--reuse", help="measure a store seeded by an earlier run")] = False,
) -> None:
    """Benchmark the console's Messages page on a large store: p95 of whole HTTP requests.

    HMC_DB_URL must be an empty, disposable database (or one seeded by an earlier run, with --reuse)."""
    from broker.observability.logs import for_a_command
    from console.bench import run
    from replay.filters import FilterError

    for_a_command("ERROR")
    settings = Settings.from_env()
    try:
        run(settings, _store(settings), rows=rows, repeat=repeat, reuse=reuse)
    except FilterError as e:
        Rich(stderr=True).print(f"[red]error:[/red] {escape(str(e))}")
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.command("console")(console_command)
    app.command("console-bench")(bench_command)
    app.add_typer(users_app, name="users")
