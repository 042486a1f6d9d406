"""The `hmc-broker` command: thin entry points over the service layer."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from adapters.harness.demo import Demo, OrderHistory, Refill, TypeLine
from broker.config import Settings
from broker.contract.dialect import DIALECTS, Parsed, ReadPolicy, read
from broker.contract.mapping import TYPE_MAPS
from broker.contract.spec import Dialect
from broker.model.messages import Problem
from broker.translation import forward

app = typer.Typer(help="HMC Broker: customer ordering systems <-> SESAM2.", no_args_is_help=True)


def _policy() -> ReadPolicy:
    settings = Settings.from_env()
    return ReadPolicy(limits=settings.xml_limits, reserve_patterns=settings.reserve_patterns)


def format_problem(source: str, problem: Problem) -> str:
    """One line per error: FILE:LINE: PATH: rule: message (value)."""
    where = f"{source}:{problem.line or 0}: {problem.path or '-'}"
    value = f" (value {problem.value})" if problem.value else ""
    return f"{where}: {problem.rule}: {problem.message}{value}"


def _read_file(path: Path, policy: ReadPolicy) -> Parsed:
    try:
        data = path.read_bytes()
    except OSError as e:
        return Parsed(problems=[Problem(rule="file.unreadable", message=e.strerror or str(e))])
    return read(data, policy)


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="XML files in either dialect")]) -> None:
    """Validate messages (dialect from the namespace); exit 0 when all are valid, 1 otherwise."""
    policy = _policy()
    failed = 0
    for path in files:
        parsed = _read_file(path, policy)
        for problem in parsed.problems:
            typer.echo(format_problem(str(path), problem))
        failed += not parsed.ok
    typer.echo(f"{len(files) - failed} valid, {failed} invalid", err=True)
    raise typer.Exit(1 if failed else 0)


@app.command()
def translate(file: Annotated[Path, typer.Argument(help="a message in either dialect")]) -> None:
    """Print the message in the other dialect; exit 1 with the errors on invalid input."""
    parsed = _read_file(file, _policy())
    if not parsed.ok or parsed.message is None or parsed.dialect is None:
        for problem in parsed.problems:
            typer.echo(format_problem(str(file), problem), err=True)
        raise typer.Exit(1)
    target = DIALECTS[Dialect.SESAM2 if parsed.dialect.name is Dialect.CUSTOMER else Dialect.CUSTOMER]
    if type(parsed.message) not in target.binding.by_type:
        typer.echo(f"{file}: {parsed.root_name} is not exchanged with the {target.name} side", err=True)
        raise typer.Exit(1)
    sys.stdout.buffer.write(target.render(forward(parsed.message)))


@app.command()
def schemas() -> None:
    """List the message types: direction, element in each dialect, and the XSD files."""
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


def _register_edges() -> None:
    """Commands whose code lives with their packages: the test harness, store operations, the benchmark."""
    from adapters.bench import cli as bench
    from adapters.exports import cli as exports
    from adapters.harness import cli as harness
    from adapters.harness import soak
    from replay import cli as store_ops

    store_ops.register(app)
    bench.register(app)
    exports.register(app)
    app.command("inject")(harness.inject)
    simulate = typer.Typer(help="Play a partner against RabbitMQ.", no_args_is_help=True)
    simulate.command("sesam2")(harness.simulate_sesam2)
    app.add_typer(simulate, name="simulate")
    app.command("scenarios")(harness.list_scenarios)
    app.command("soak")(soak.soak)


_register_edges()


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the message store's tables (HMC_DB_URL); safe to repeat."""
    from broker.bootstrap import store

    settings = Settings.from_env()
    store(settings)
    typer.echo(f"store is up to date: {_safe_url(settings.db_url)}")


@app.command()
def topology() -> None:
    """Declare the exchanges, queues and bindings of the AMQP contract (idempotent)."""
    from adapters.amqp.transport import declare_topology

    settings = Settings.from_env()
    declare_topology(settings)
    typer.echo(f"topology declared on {_safe_url(settings.amqp_url)} (prefix {settings.prefix!r})")


@app.command()
def run() -> None:
    """Run a broker worker until SIGTERM or SIGINT; then finish the batch in hand, flush the outbox, exit 0."""
    import signal

    from broker.bootstrap import worker
    from broker.observability.http import serve
    from broker.observability.logs import configure as configure_logs

    settings = Settings.from_env()
    configure_logs(settings.log_level, settings.log_format)  # type: ignore[arg-type]
    w = worker(settings)
    if settings.http_port:
        try:
            serve(settings.http_port, w.readiness)
        except OSError as e:  # a second worker on one host needs its own HMC_HTTP_PORT; keep working meanwhile
            logging.getLogger("broker.cli").error("no /metrics endpoint: port %s: %s", settings.http_port, e)

    def _stop(signum: int, _frame: object) -> None:
        w.stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    typer.echo(f"worker consuming on {_safe_url(settings.amqp_url)}, store {_safe_url(settings.db_url)}", err=True)
    w.run()
    typer.echo(f"stopped after {w.counters.messages} messages", err=True)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False) -> None:
    """Operations at a glance: last hour per type, backlog, parked, queues, SESAM2 and customer systems."""
    import json

    from adapters.amqp.transport import partner_queues, read_queue_counts
    from broker.bootstrap import store
    from broker.status import gather

    settings = Settings.from_env()
    report = gather(
        settings, store(settings, migrate=False), partner_queues(settings), lambda q: read_queue_counts(settings, q)
    )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
        return
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


@app.command()
def demo(
    amqp_url: Annotated[str | None, typer.Option(help="RabbitMQ (default: HMC_AMQP_URL, else in-process)")] = None,
    db_url: Annotated[
        str | None, typer.Option(help="the store (default: HMC_DB_URL, else SQLite in a temp dir)")
    ] = None,
    count: Annotated[int, typer.Option(help="customer messages to send")] = 60,
    seed: Annotated[int | None, typer.Option(help="the same seed gives the same messages (default: random)")] = None,
) -> None:
    """The whole flow in one process: simulated customer systems and SESAM2 around a real broker worker."""
    import os
    import random
    import tempfile

    from adapters.harness.demo import account_from_store, cleanup, demo_settings, histories, refills

    console = Console(width=max(Console().width, 110))
    with tempfile.TemporaryDirectory(prefix="hmc-demo-") as tmp:
        settings = demo_settings(
            amqp_url or os.environ.get("HMC_AMQP_URL") or "memory://",
            db_url or os.environ.get("HMC_DB_URL") or f"sqlite:///{tmp}/demo.sqlite",
        )
        console.print(f"[bold]HMC Broker demo[/] on {_safe_url(settings.amqp_url)}, store {_safe_url(settings.db_url)}")
        seed = random.randrange(1_000_000) if seed is None else seed  # new ids each run, also in a kept store
        console.print(f"  seed {seed} (--seed {seed} repeats this run)")
        run = Demo(settings, count=count, seed=seed)
        try:
            worker = run.run(progress=lambda text: console.print(f"  {text}"))
        finally:
            cleanup(settings)
        _print_demo(console, run, account_from_store(run, worker), histories(run, worker))
        _print_refills(console, refills(run, worker))


def _print_demo(console: Console, run: Demo, lines: list[TypeLine], orders: list[OrderHistory]) -> None:
    table = Table(title="What happened, per message type (read from the message store)")
    for column in ("from", "type", "sent", "stored", "delivered", "rejected", "parked", "at customers"):
        table.add_column(column, justify="left" if column in ("from", "type") else "right", no_wrap=True)
    for line in lines:
        direction = "customer" if line.direction == "inbound" else "SESAM2"
        table.add_row(
            direction,
            line.message_type,
            *(str(n) for n in (line.sent, line.stored, line.delivered, line.rejected, line.parked)),
            str(line.received_by_customers),
        )
    console.print(table)
    sent = sum(line.sent for line in lines)
    stored = sum(line.stored for line in lines)
    console.print(
        f"{sent} messages sent, {stored} in the store, invalid ones included. InvoiceData is delivered only on"
        " hmc.invoice to customers with invoice permission; for the others it is parked, with the reason."
    )
    console.print("[bold]Rejections[/] (what the sender got back):")
    for why, rejection in run.account.rejections:
        problems = "; ".join(f"{p.rule} at {p.path or '-'}" for p in rejection.problems)
        console.print(f"  {why}: {problems}")
    console.print("[bold]A few orders[/] (order view and history):")
    for order in orders:
        console.print(
            f"  {order.customer}/{order.order_id}: {order.status}"
            + (f", SESAM2 order {order.sesam2_order_number}" if order.sesam2_order_number else "")
        )
        for message_type, status, what in order.steps:
            console.print(f"    {message_type:<20} {status:<10} {what}")


def _print_refills(console: Console, refills: list[Refill]) -> None:
    console.print("[bold]Buffer stores[/] (automatic replenishment: one order per under-run of a safety level):")
    for r in refills:
        console.print(
            f"  {r.store} {r.article}: {r.on_hand_at_order} on hand < safety level {r.safety_level}"
            f" -> order {r.order_id} of {r.quantity} to SESAM2, {r.status}"
        )
    if not refills:
        console.print("  no safety level was under-run")


def _safe_url(url: str) -> str:
    """A URL fit for a log line: the password is never shown."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("@")[-1]


if __name__ == "__main__":
    app()
