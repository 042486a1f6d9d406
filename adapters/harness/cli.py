"""`inject` and `simulate-sesam2`: the harness on a real RabbitMQ (registered under `hmc-broker`); and `demo`.

`inject` and `simulate sesam2` speak pika (adapters/harness/wire.py), never the broker's own AMQP code, and both
need the broker's topology declared (`hmc-broker topology`) under the same prefix. `demo` runs the whole flow in
one process (adapters/harness/demo.py) and prints what the store holds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from adapters.amqp.topology import Names
from adapters.catalog_file import DEMO_CATALOG, CatalogError, load_catalog
from adapters.harness import envelopes, scenarios, simulation, wire
from adapters.harness.generator import INBOUND_NAMES, STOCKHOLM, Generator
from adapters.harness.sesam2_sim import Behaviour, Sesam2Simulator
from broker.catalog import Catalog
from broker.config import ConfigurationError, Settings, parse_customers, safe_url
from broker.model.codes import Side
from broker.model.messages import SCHEMA_VERSIONS, Message

if TYPE_CHECKING:
    from adapters.harness.demo import Demo, OrderHistory, Refill, TypeLine

app = typer.Typer(help="Test harness: inject messages, simulate SESAM2.", no_args_is_help=True)
console = Console()

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
AmqpUrl = Annotated[str, typer.Option("--amqp-url", envvar="HMC_AMQP_URL", help="RabbitMQ URL", show_default=False)]
Prefix = Annotated[str, typer.Option("--prefix", envvar="HMC_PREFIX", help="environment prefix of every name")]
AsJson = Annotated[bool, typer.Option("--json", help="the result as one JSON object on stdout (progress on stderr)")]
CatalogFile = Annotated[
    Path | None, typer.Option("--catalog", envvar="HMC_CATALOG", help="article catalog (CSV/JSON); default: demo")
]


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[red]error:[/red] {message}", soft_wrap=True)  # stdout is for results
    return typer.Exit(2)


def _catalog(path: Path | None) -> Catalog:
    try:
        return load_catalog(path or DEMO_CATALOG)
    except (OSError, CatalogError) as e:
        raise _fail(str(e)) from None


def _customers(spec: str | None) -> list[str]:
    spec = spec or os.environ.get("HMC_CUSTOMERS") or "1001"
    return [c.number for c in parse_customers(spec)]  # takes "1001,1002" and HMC_CUSTOMERS' longer form alike


def _versions(spec: str | None, numbers: list[str], schema_version: str | None) -> dict[str, str]:
    """The customer dialect's version each customer's system writes: `--schema-version` for all of them;
    else the version its `--customers` entry names (the fifth field of HMC_CUSTOMERS' form,
    `1001:Region Skåne:websesam-skane:invoice:1.1`); else the broker's configuration of it (HMC_CONFIG's
    `[[customers]]` schema_version, HMC_CUSTOMERS), as the worker it feeds reads it; else 1.0."""
    if schema_version is not None:
        if schema_version not in SCHEMA_VERSIONS:
            raise _fail(f"--schema-version {schema_version!r}: the customer dialect has {', '.join(SCHEMA_VERSIONS)}")
        return dict.fromkeys(numbers, schema_version)
    try:
        versions = {c.number: c.schema_version for c in Settings.from_env().customers}
    except ConfigurationError:
        versions = {}  # a broker configuration with a fault of its own: the harness does not need the rest
    named = spec or os.environ.get("HMC_CUSTOMERS") or ""
    for item in filter(None, (x.strip() for x in named.split(","))):
        if len(fields := item.split(":")) >= 5 and fields[4]:
            versions[fields[0]] = fields[4]
    if unknown := sorted({v for n, v in versions.items() if n in numbers} - set(SCHEMA_VERSIONS)):
        raise _fail(f"schema version {unknown[0]!r}: the customer dialect has {', '.join(SCHEMA_VERSIONS)}")
    return {n: versions.get(n, SCHEMA_VERSIONS[0]) for n in numbers}


def _mix(spec: str | None) -> dict[str, float] | None:
    if not spec:
        return None
    weights: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, _, weight = item.partition("=")
        try:
            weights[name.strip()] = float(weight)
        except ValueError:
            raise _fail(f"--mix {item!r}: expected Type=weight, e.g. CustomerOrder=70") from None
    if unknown := sorted(set(weights) - set(INBOUND_NAMES)):
        raise _fail(f"--mix: unknown type(s) {', '.join(unknown)}; inbound types: {', '.join(INBOUND_NAMES)}")
    return weights


@app.command()
def inject(
    amqp_url: AmqpUrl = DEFAULT_AMQP_URL,
    prefix: Prefix = "",
    count: Annotated[int, typer.Option(min=1, help="messages; with --scenario: runs of the scenario")] = 100,
    rate: Annotated[float, typer.Option(min=0, help="messages per second (0: as fast as possible)")] = 0.0,
    customers: Annotated[
        str | None, typer.Option(help="customer numbers, e.g. 1001,1002 (default: HMC_CUSTOMERS, else 1001)")
    ] = None,
    mix: Annotated[str | None, typer.Option(help="weights per type, e.g. CustomerOrder=70,WorkOrder=10")] = None,
    seed: Annotated[int | None, typer.Option(help="same seed, same messages (default: a random one, printed)")] = None,
    scenario: Annotated[str | None, typer.Option(help="a scenario file, or a shipped scenario's name")] = None,
    user_id: Annotated[str | None, typer.Option(help="AMQP user_id to set (must be the connecting user)")] = None,
    schema_version: Annotated[
        str | None,
        typer.Option(
            "--schema-version",
            help="the customer dialect's version every customer writes, e.g. 1.1 (default: each customer's"
            " configured version, HMC_CONFIG / HMC_CUSTOMERS, else 1.0)",
        ),
    ] = None,
    catalog: CatalogFile = None,
    as_json: AsJson = False,
) -> None:
    """Publish generated customer messages (or a scenario's messages from both sides) to RabbitMQ.

    Each customer's messages are written in the customer dialect's version it is configured for, with that
    version's elements filled in (1.1: förskrivarkod and profession, home municipality, cost centre...)."""
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    numbers = _customers(customers)
    versions = _versions(customers, numbers, schema_version)
    articles = _catalog(catalog)
    try:
        # Live traffic: messages carry the time they are sent; their content still follows the seed.
        generator = Generator(seed, articles, numbers, clock=lambda: datetime.now(STOCKHOLM), versions=versions)
    except ValueError as e:
        raise _fail(str(e)) from None
    if scenario and mix:
        raise _fail("--mix does not apply to --scenario: the scenario says what is sent")
    if scenario:
        try:
            script = scenarios.find(scenario)
        except scenarios.ScenarioError as e:
            raise _fail(str(e)) from None
        total = count * len(script.steps)
        simulator = Sesam2Simulator(seed, catalog=articles)
        items: Iterator[tuple[Side, Message]] = (
            item
            for i in range(count)
            for item in scenarios.run(script, generator, simulator, customer=numbers[i % len(numbers)])
        )
    else:
        total, weights = count, _mix(mix)
        items = ((Side.CUSTOMER, message) for message in generator.mix(count, weights))
    names = Names(prefix)
    sent: Counter[tuple[str, str]] = Counter()
    started = time.monotonic()
    try:
        connection = wire.connect(amqp_url)
    except wire.WireError as e:
        raise _fail(str(e)) from None
    try:
        publisher = wire.Publisher(connection)
        with _progress(Console(stderr=True) if as_json else console) as progress:
            task = progress.add_task("injecting", total=total)
            for i, (side, message) in enumerate(items):
                if rate > 0:  # pace against the start, so that slow confirms do not add up to a lower rate
                    time.sleep(max(0.0, started + i / rate - time.monotonic()))
                # user_id only on customer messages: SESAM2's are not the customer system's to send.
                publisher.publish(
                    envelopes.address(side, message, names), user_id=user_id if side is Side.CUSTOMER else None
                )
                sent[(side.value, type(message).__name__)] += 1
                progress.advance(task)
    except KeyboardInterrupt:
        console.print("interrupted")
    except wire.FAILURES as e:
        _print_sent(sent, time.monotonic() - started, seed, versions, as_json)
        raise _fail(str(e) or repr(e)) from None
    finally:
        if connection.is_open:
            connection.close()
    _print_sent(sent, time.monotonic() - started, seed, versions, as_json)


def _progress(shown_on: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=shown_on,
    )


def _print_sent(
    sent: Counter[tuple[str, str]], elapsed: float, seed: int, versions: dict[str, str], as_json: bool = False
) -> None:
    if as_json:
        by_type = [{"from": side, "type": name, "messages": n} for (side, name), n in sorted(sent.items())]
        total = sum(sent.values())
        report = {"seed": seed, "total": total, "seconds": round(elapsed, 3), "sent": by_type}
        typer.echo(json.dumps({**report, "schema_versions": versions}))
        return
    table = Table(title=f"Sent (seed {seed})")
    for column in ("from", "type", "messages"):
        table.add_column(column, justify="right" if column == "messages" else "left")
    for (side, name), n in sorted(sent.items()):
        table.add_row(side, name, str(n))
    total = sum(sent.values())
    table.add_row("", "[bold]total", f"[bold]{total}")
    console.print(table)
    written = ", ".join(f"{n} in {v}" for n, v in versions.items())
    console.print(
        f"sent {total} in {elapsed:.1f} s ({total / elapsed if elapsed else 0:.0f}/s), seed {seed};"
        f" customer dialect: {written}",
        soft_wrap=True,
    )


@app.command("simulate-sesam2")
def simulate_sesam2(
    amqp_url: AmqpUrl = DEFAULT_AMQP_URL,
    prefix: Prefix = "",
    confirm: Annotated[
        float, typer.Option(min=0, max=1, help="share of orders confirmed (of those not cancelled)")
    ] = 0.97,
    delay: Annotated[float, typer.Option(min=0, max=1, help="share of confirmed orders then delayed")] = 0.15,
    cancel: Annotated[float, typer.Option(min=0, max=1, help="share of orders, work orders, pickups cancelled")] = 0.03,
    receipt: Annotated[float, typer.Option(min=0, max=1, help="share of deliveries whose receipt/note follows")] = 0.9,
    answer_delay: Annotated[float, typer.Option(min=0, help="seconds between receiving and answering")] = 0.0,
    outage: Annotated[
        list[str] | None, typer.Option(help="START:END seconds from start when SESAM2 is down; repeatable")
    ] = None,
    duration: Annotated[float | None, typer.Option(min=0, help="stop after this many seconds")] = None,
    count: Annotated[int | None, typer.Option(min=1, help="stop after this many messages")] = None,
    seed: Annotated[int, typer.Option(help="seeds SESAM2's decisions")] = 0,
    prefetch: Annotated[int, typer.Option(min=1, help="messages taken from sesam2.in at a time")] = 50,
    catalog: CatalogFile = None,
    as_json: AsJson = False,
) -> None:
    """Play SESAM2: consume sesam2.in, answer each message on hmc.sesam2.in (Ctrl-C stops)."""
    try:
        windows = [simulation.Outage.parse(o) for o in outage or []]
        behaviour = Behaviour(cancel_ratio=cancel, confirm_ratio=confirm, delay_ratio=delay, receipt_ratio=receipt)
    except ValueError as e:
        raise _fail(str(e)) from None
    simulator = Sesam2Simulator(seed, behaviour, _catalog(catalog))
    try:
        connection = wire.connect(amqp_url)
    except wire.WireError as e:
        raise _fail(str(e)) from None
    names = Names(prefix)
    shown_on = Console(stderr=True) if as_json else console  # with --json, stdout holds only the summary
    shown_on.print(f"SESAM2 simulator on {names.sesam2_queue} ({safe_url(amqp_url)}); Ctrl-C stops", soft_wrap=True)
    summary: simulation.Summary | None = None
    try:
        with _progress(shown_on) as progress:
            task = progress.add_task("answering", total=count)

            def show(s: simulation.Summary) -> None:
                state = "[red]SESAM2 down" if s.down else "answering"
                progress.update(task, completed=s.handled, description=state)

            summary = simulation.simulate(
                connection,
                names,
                simulator,
                answer_delay=answer_delay,
                outages=windows,
                duration=duration,
                count=count,
                prefetch=prefetch,
                on_change=show,
            )
    except wire.FAILURES as e:
        raise _fail(str(e) or repr(e)) from None
    finally:
        if connection.is_open:
            connection.close()
    if summary is not None and as_json:
        typer.echo(json.dumps(_simulated(summary)))
    elif summary is not None:
        _print_simulated(summary)


def _simulated(s: simulation.Summary) -> dict[str, object]:
    return {
        "received": dict(sorted(s.received.items())),
        "answers": dict(sorted(s.answers.items())),
        "seconds": round(s.elapsed, 3),
        "invalid": s.invalid,
        "outages": s.outages,
        "handed_back": s.requeued,
        "interrupted": s.interrupted,
    }


def _print_simulated(s: simulation.Summary) -> None:
    table = Table(title="SESAM2 simulator")
    for column in ("received", "n", "answered with", "m"):
        table.add_column(column, justify="right" if len(column) == 1 else "left")
    left, right = sorted(s.received.items()), sorted(s.answers.items())
    for i in range(max(len(left), len(right))):
        a, n = left[i] if i < len(left) else ("", "")
        b, k = right[i] if i < len(right) else ("", "")
        table.add_row(a, str(n), b, str(k))
    console.print(table)
    if s.interrupted:
        console.print("interrupted: messages taken but not answered were handed back to the queue")
    console.print(
        f"answered {sum(s.received.values())} message(s) with {sum(s.answers.values())} answer(s) in "
        f"{s.elapsed:.1f} s; invalid {s.invalid}; outages {s.outages}; handed back {s.requeued}",
        soft_wrap=True,
    )


@app.command("scenarios")
def list_scenarios(as_json: AsJson = False) -> None:
    """List the shipped scenarios (use one with `inject --scenario NAME`)."""
    shipped = [scenarios.find(name) for name in scenarios.shipped()]
    if as_json:
        listed = [
            {"name": name, "steps": [s.type_name for s in script.steps], "description": script.description}
            for name, script in zip(scenarios.shipped(), shipped, strict=True)
        ]
        typer.echo(json.dumps(listed))
        return
    table = Table(title="Shipped scenarios")
    for column in ("name", "steps", "description"):
        table.add_column(column)
    for name, script in zip(scenarios.shipped(), shipped, strict=True):
        table.add_row(name, " -> ".join(s.type_name for s in script.steps), script.description)
    console.print(table)


def demo(
    amqp_url: Annotated[str | None, typer.Option(help="RabbitMQ (default: HMC_AMQP_URL, else in-process)")] = None,
    db_url: Annotated[
        str | None, typer.Option(help="the store (default: HMC_DB_URL, else SQLite in a temp dir)")
    ] = None,
    count: Annotated[int, typer.Option(help="customer messages to send")] = 60,
    seed: Annotated[int | None, typer.Option(help="the same seed gives the same messages (default: random)")] = None,
    as_json: AsJson = False,
    console: Annotated[
        bool, typer.Option("--console", help="then serve the operator console on the demo's store until Ctrl-C")
    ] = False,
    console_port: Annotated[int, typer.Option(help="the console's port (with --console)")] = 8400,
) -> None:
    """The whole flow in one process: simulated customer systems and SESAM2 around a real broker worker."""
    import tempfile

    from adapters.harness.demo import Demo, account_from_store, cleanup, demo_settings, histories, refills
    from broker.observability.logs import for_a_command

    for_a_command()  # stdout is for the account: the worker's warnings (a security event, say) go to stderr
    # With --json the account is one JSON object on stdout, and what the demo says as it goes is on stderr.
    out = Console(stderr=True) if as_json else Console(width=max(Console().width, 110))
    with tempfile.TemporaryDirectory(prefix="hmc-demo-") as tmp:
        settings = demo_settings(
            amqp_url or os.environ.get("HMC_AMQP_URL") or "memory://",
            db_url or os.environ.get("HMC_DB_URL") or f"sqlite:///{tmp}/demo.sqlite",
        )
        out.print(f"[bold]HMC Broker demo[/] on {safe_url(settings.amqp_url)}, store {safe_url(settings.db_url)}")
        seed = random.randrange(1_000_000) if seed is None else seed  # new ids each run, also in a kept store
        out.print(f"  seed {seed} (--seed {seed} repeats this run)")
        run = Demo(settings, count=count, seed=seed)
        try:
            worker = run.run(progress=lambda text: out.print(f"  {text}"))
        finally:
            cleanup(settings)
        lines, orders, refilled = account_from_store(run, worker), histories(run, worker), refills(run, worker)
        if as_json:
            typer.echo(json.dumps(_demo_account(settings, seed, run, lines, orders, refilled)))
        else:
            _print_demo(out, run, lines, orders)
            _print_refills(out, refilled)
        if console:
            from console.cli import serve_demo

            try:
                serve_demo(dataclasses.replace(settings, catalog=str(DEMO_CATALOG)), console_port)
            finally:
                cleanup(settings)  # what a replay from the console declared again


def _demo_account(
    settings: Settings, seed: int, run: Demo, lines: list[TypeLine], orders: list[OrderHistory], refilled: list[Refill]
) -> dict[str, object]:
    """What the demo prints, as one JSON object."""
    return {
        "amqp_url": safe_url(settings.amqp_url),
        "db_url": safe_url(settings.db_url),
        "seed": seed,
        "per_type": [dataclasses.asdict(line) for line in lines],
        "rejections": [
            {"why": why, "problems": [{"rule": p.rule, "path": p.path} for p in rejection.problems]}
            for why, rejection in run.account.rejections
        ],
        "orders": [dataclasses.asdict(order) for order in orders],
        "refills": [dataclasses.asdict(refill) for refill in refilled],
    }


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


def register(app: typer.Typer) -> None:
    """Add the harness's commands to the `hmc-broker` command (broker/cli.py lists them in EDGES)."""
    app.command("inject")(inject)
    simulate = typer.Typer(help="Play a partner against RabbitMQ.", no_args_is_help=True)
    simulate.command("sesam2")(simulate_sesam2)
    app.add_typer(simulate, name="simulate")
    app.command("scenarios")(list_scenarios)
    app.command("demo")(demo)
