"""The `hmc-broker` command, the composition root: thin entry points over the core, and the edges' commands.

The edges' commands (store operations in replay/, exports, the test harness, the benchmark) are listed in EDGES
with their one-line help; a command's module is imported only when that command runs or shows its own help, so
`hmc-broker --help` and `hmc-broker run` load neither the harness, the benchmark nor replay/. The core commands
below import what they need in their bodies for the same reason.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:
    from typer._click import Command, Context  # the click that typer (0.29) vendors; for type hints only

    from broker.contract.dialect import Parsed, ReadPolicy
    from broker.model.messages import Problem


@dataclass(frozen=True)
class Edge:
    """A command whose code lives with its package; `module.register(app)` adds it (with its siblings)."""

    module: str
    summary: str  # the command's first help line, shown by `hmc-broker --help` without importing the module


EDGES: dict[str, Edge] = {
    "messages": Edge("replay.cli", "Search and inspect the message store."),
    "replay": Edge(
        "replay.cli", "Replay messages through the whole pipeline again: one, several, or all matching a filter."
    ),
    "audit": Edge(
        "replay.cli",
        "The audit trail: who replayed, edited, revealed, exported, resolved, pruned or searched a patient.",
    ),
    "prune": Edge("replay.cli", "Remove payloads of settled messages past their retention (HMC_RETENTION, per type)."),
    "console": Edge(
        "console.cli", "The operator console: a web UI and an HTTP API (/api/v1) on the configured store and RabbitMQ."
    ),
    "console-bench": Edge(
        "console.cli",
        "Benchmark the console's Messages page on a large store: p95 of whole HTTP requests.",
    ),
    "users": Edge("console.cli", "The console's local accounts (argon2 password hashes) and service accounts."),
    "invoice": Edge("adapters.exports.cli", "Monthly invoice data (fakturaunderlag) from SESAM2."),
    "catalog": Edge("adapters.catalog_cli", "The article register in the store: show it, diff or import an export."),
    "forecast": Edge(
        "adapters.forecast_cli", "Outage forecasts: a partner expected back by a time holds back the reserve routine."
    ),
    "report": Edge("adapters.exports.cli", "Reports from the message store."),
    "demo": Edge(
        "adapters.harness.cli",
        "The whole flow in one process: simulated customer systems and SESAM2 around a real broker worker.",
    ),
    "inject": Edge(
        "adapters.harness.cli",
        "Publish generated customer messages (or a scenario's messages from both sides) to RabbitMQ.",
    ),
    "simulate": Edge("adapters.harness.cli", "Play a partner against RabbitMQ."),
    "scenarios": Edge("adapters.harness.cli", "List the shipped scenarios (use one with `inject --scenario NAME`)."),
    "soak": Edge(
        "adapters.harness.soak",
        "Soak test: steady traffic, a worker restarted every few minutes, memory over time, loss (must be 0).",
    ),
    "contract": Edge(
        "adapters.contract.cli",
        "The AsyncAPI document of the AMQP contract (from the code), the schema bundle, the compatibility check.",
    ),
    "bench": Edge(
        "adapters.bench.cli",
        "Measure the broker end to end beside a raw pika pass-through and a naive hand-written loop, in one run.",
    ),
}


class LazyCommand(TyperCommand):
    """Stands in for an edge's command in the listing; resolving the command to run it loads the real one."""

    def __init__(self, name: str, edge: Edge) -> None:
        super().__init__(name, help=edge.summary)
        self.edge = edge

    def load(self) -> Command:
        assert self.name is not None
        module = importlib.import_module(self.edge.module)
        holder = typer.Typer()
        module.register(holder)
        return typer.main.get_group(holder).commands[self.name]


class Commands(TyperGroup):
    """`hmc-broker`: the core's commands, and a LazyCommand per edge command until one is run."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, edge in EDGES.items():
            self.commands[name] = LazyCommand(name, edge)

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, LazyCommand):
            command = self.commands[name] = command.load()
        return name, command, rest


# rich_markup_mode=None: the listing and the core commands' help are click's plain text; rendering them with
# rich would import rich (about 100 ms) for `hmc-broker --help` alone. The edge commands' help keeps rich.
app = typer.Typer(
    cls=Commands,
    help="HMC Broker: customer ordering systems <-> SESAM2.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # here: 40 ms that `--help` need not wait for

        typer.echo(f"hmc-broker {version('hmc-broker')}")
        raise typer.Exit()


_debug = False  # --debug: an error shows its whole traceback


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="On an error, show its full traceback.")] = False,
) -> None:
    global _debug
    _debug = debug


# Exit statuses by kind of failure, so that scripts and checks can tell them apart.
EXIT_FAILED, EXIT_CONFIGURATION, EXIT_UNREACHABLE = 1, 2, 3


def main() -> None:
    """The `hmc-broker` entry point: a failure is one line (what, where, what to do) and an exit status by kind;
    the traceback only with --debug."""
    try:
        app()
    except Exception as error:  # the last place an error can be said clearly; --debug shows all of it
        if _debug:
            raise
        status, line = explain(error)
        typer.echo(f"hmc-broker: {line}", err=True)
        raise SystemExit(status) from None


def explain(error: BaseException) -> tuple[int, str]:
    """(exit status, one line) for an error a command let through."""
    from broker.config import ConfigurationError
    from broker.contract.identifiers import IdentifierError
    from broker.store.unit_of_work import StoreNotMigrated

    module = type(error).__module__
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if isinstance(error, ConfigurationError | IdentifierError):
        return EXIT_CONFIGURATION, f"configuration: {first}"
    if isinstance(error, StoreNotMigrated):
        return EXIT_UNREACHABLE, f"store: {first}"
    if module.startswith(("sqlalchemy", "psycopg", "sqlite3")):
        cause = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return EXIT_UNREACHABLE, f"store unreachable or refused (HMC_DB_URL): {cause}; is the database up and migrated?"
    if module.startswith(("kombu", "amqp", "pika")) or isinstance(error, ConnectionError | TimeoutError):
        return EXIT_UNREACHABLE, f"RabbitMQ unreachable or refused (HMC_AMQP_URL): {first}; is it running?"
    return EXIT_FAILED, f"{type(error).__name__}: {first} (hmc-broker --debug ... shows the traceback)"


def _policy() -> ReadPolicy:
    from broker.config import Settings
    from broker.contract.dialect import ReadPolicy

    settings = Settings.from_env()
    return ReadPolicy(limits=settings.xml_limits, reserve_patterns=settings.reserve_patterns)


def format_problem(source: str, problem: Problem) -> str:
    """One line per error: FILE:LINE: PATH: rule: message (value)."""
    where = f"{source}:{problem.line or 0}: {problem.path or '-'}"
    value = f" (value {problem.value})" if problem.value else ""
    return f"{where}: {problem.rule}: {problem.message}{value}"


def _read_file(path: Path, policy: ReadPolicy) -> Parsed:
    from broker.contract.dialect import Parsed, read
    from broker.model.messages import Problem

    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as e:
        return Parsed(problems=[Problem(rule="file.unreadable", message=e.strerror or str(e))])
    return read(data, policy)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="XML files in either dialect; - reads standard input")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object: per file, valid and its problems")] = False,
) -> None:
    """Validate messages (dialect from the namespace); exit 0 when all are valid, 1 otherwise."""
    import json
    from dataclasses import asdict

    policy = _policy()
    failed = 0
    results = []
    for path in files:
        parsed = _read_file(path, policy)
        if as_json:
            results.append({"file": str(path), "valid": parsed.ok, "problems": [asdict(p) for p in parsed.problems]})
        else:
            for problem in parsed.problems:
                typer.echo(format_problem(str(path), problem))
        failed += not parsed.ok
    if as_json:
        typer.echo(json.dumps({"valid": len(files) - failed, "invalid": failed, "files": results}, indent=2))
    else:
        typer.echo(f"{len(files) - failed} valid, {failed} invalid", err=True)
    raise typer.Exit(1 if failed else 0)


@app.command()
def translate(
    file: Annotated[Path, typer.Argument(help="a message in either dialect")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object: the type, both dialects, the XML")] = False,
) -> None:
    """Print the message in the other dialect; exit 1 with the errors on invalid input."""
    from broker.contract.dialect import DIALECTS
    from broker.model.codes import Side
    from broker.translation import forward

    parsed = _read_file(file, _policy())
    if not parsed.ok or parsed.message is None or parsed.dialect is None:
        for problem in parsed.problems:
            typer.echo(format_problem(str(file), problem), err=True)
        raise typer.Exit(1)
    target = DIALECTS[Side.SESAM2 if parsed.dialect.name is Side.CUSTOMER else Side.CUSTOMER]
    if type(parsed.message) not in target.binding.by_type:
        typer.echo(f"{file}: {parsed.root_name} is not exchanged with the {target.name} side", err=True)
        raise typer.Exit(1)
    rendered = target.render(forward(parsed.message))
    if as_json:
        import json

        shown = {"type": type(parsed.message).__name__, "from": parsed.dialect.name.value, "to": target.name.value}
        typer.echo(json.dumps({**shown, "xml": rendered.decode("utf-8")}))
        return
    sys.stdout.buffer.write(rendered)


@app.command()
def schemas(as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False) -> None:
    """List the message types: direction, element in each dialect, and the XSD files."""
    import json

    from rich.console import Console
    from rich.table import Table

    from broker.contract.dialect import DIALECTS
    from broker.contract.mapping import TYPE_MAPS

    if as_json:
        types = [
            {"type": t.cls.__name__, "direction": t.cls.direction.value, "customer": t.customer, "sesam2": t.sesam2}
            for t in TYPE_MAPS.values()
        ]
        dialects = [
            {"dialect": d.name.value, "namespace": d.namespace, "xsd": str(d.schema_path)} for d in DIALECTS.values()
        ]
        typer.echo(json.dumps({"types": types, "dialects": dialects}, indent=2))
        return
    table = Table(title="Message types")
    for column in ("type", "direction", "customer element", "SESAM2 element"):
        table.add_column(column)
    for tmap in TYPE_MAPS.values():
        table.add_row(tmap.cls.__name__, tmap.cls.direction.value, tmap.customer, tmap.sesam2 or "(broker only)")
    console = Console()
    console.print(table)
    for dialect in DIALECTS.values():
        console.print(f"{dialect.name.value} XSD: {dialect.schema_path}  namespace {dialect.namespace}")


db_app = typer.Typer(help="The message store.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False) -> None:
    """Create or migrate the message store's tables (HMC_DB_URL); safe to repeat."""
    import json

    from broker.config import Settings, safe_url
    from broker.store.db import make_engine, upgrade

    settings = Settings.from_env()
    engine = make_engine(settings.db_url)
    try:
        newer = upgrade(engine)  # a store a newer release migrated is left as it is (a rolling upgrade)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps({"store": safe_url(settings.db_url), "up_to_date": not newer, "newer": newer}))
    elif newer:
        typer.echo(f"store is at a newer revision ({', '.join(newer)}) than this version: {safe_url(settings.db_url)}")
    else:
        typer.echo(f"store is up to date: {safe_url(settings.db_url)}")


@app.command()
def topology(
    delete: Annotated[
        bool, typer.Option("--delete", help="delete the prefix's queues and exchanges instead (empty queues only)")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="with --delete: also queues that hold messages, and with no prefix")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
) -> None:
    """Declare the exchanges, queues and bindings of the AMQP contract (idempotent), or delete them."""
    import json

    from adapters.amqp.transport import declare_topology, delete_topology
    from broker.config import Settings, safe_url

    settings = Settings.from_env()
    where = f"{safe_url(settings.amqp_url)} (prefix {settings.prefix!r})"
    if not delete:
        declare_topology(settings)
        if as_json:
            typer.echo(json.dumps({"declared": True, "amqp": safe_url(settings.amqp_url), "prefix": settings.prefix}))
        else:
            typer.echo(f"topology declared on {where}")
        return
    if not settings.prefix and not force:
        typer.echo("hmc-broker: refusing to delete the unprefixed (production) names without --force", err=True)
        raise typer.Exit(EXIT_CONFIGURATION)
    kept = delete_topology(settings, force=force)
    if as_json:
        typer.echo(json.dumps({"deleted": not kept, "kept": kept, "prefix": settings.prefix}))
    elif kept:
        typer.echo(f"kept {len(kept)} queue(s) that hold messages (--force deletes them): {', '.join(kept)}", err=True)
    else:
        typer.echo(f"topology deleted on {where}")
    if kept:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def run() -> None:
    """Run a broker worker until SIGTERM or SIGINT; then finish the batch in hand, flush the outbox, exit 0."""
    import signal

    from broker.bootstrap import worker
    from broker.config import Settings, safe_url
    from broker.observability.http import serve
    from broker.observability.logs import configure as configure_logs
    from broker.runtime import prepare_process

    settings = Settings.from_env()
    configure_logs(settings.log_level, settings.log_format)  # type: ignore[arg-type]
    w = worker(settings)
    if settings.http_port:
        try:
            serve(settings.http_port, w.readiness)
        except OSError as e:  # a second worker on one host needs its own HMC_HTTP_PORT; keep working meanwhile
            import logging

            logging.getLogger("broker.cli").error("no /metrics endpoint: port %s: %s", settings.http_port, e)

    def _stop(signum: int, _frame: object) -> None:
        w.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    typer.echo(f"worker consuming on {safe_url(settings.amqp_url)}, store {safe_url(settings.db_url)}", err=True)
    prepare_process()
    w.run()
    typer.echo(f"stopped after {w.counters.messages} messages", err=True)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False) -> None:
    """Operations at a glance: last hour per type, backlog, parked, queues, SESAM2 and customer systems.

    Exit status, so that it serves as a check: 0 every partner consumes; 1 a partner does not (down, warning
    or reserve routine: the table says which); 3 RabbitMQ or the store cannot be asked.
    """
    import json

    from rich.console import Console
    from rich.table import Table

    from adapters.amqp.transport import partner_queues, read_queue_counts
    from broker.bootstrap import store
    from broker.config import Settings
    from broker.observability.logs import for_a_command
    from broker.status import gather

    settings = Settings.from_env()
    for_a_command("ERROR")  # stdout is the report's; the watch's log lines are not
    report = gather(
        settings, store(settings, migrate=False), partner_queues(settings), lambda q: read_queue_counts(settings, q)
    )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
        raise typer.Exit(report.exit_status)
    console = Console()
    types = Table(title="Last hour")
    for column in ("direction", "type", "status", "count", "per min"):
        types.add_column(column, justify="right" if column in ("count", "per min") else "left")
    for t in report.last_hour:
        types.add_row(t.direction, t.message_type, t.status, str(t.count), f"{t.count / 60:.1f}")
    console.print(types)
    console.print(" ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.backlog.items()))
    partners = Table(title="Partners")
    for column in ("partner", "queue", "waiting", "consumers", "oldest", "state", "outage"):
        partners.add_column(column)
    for p in report.partners:
        partners.add_row(
            p.partner,
            p.queue,
            "?" if p.messages is None else str(p.messages),
            "?" if p.consumers is None else str(p.consumers),
            f"{p.oldest_age_s:.0f} s",
            p.level,
            f"{p.outage_s / 3600:.1f} h" if p.outage_s else "-",
        )
    console.print(partners)
    raise typer.Exit(report.exit_status)


if __name__ == "__main__":
    main()
