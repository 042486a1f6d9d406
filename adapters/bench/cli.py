"""`hmc-broker bench`: wired into the `hmc-broker` command by `register(app)`."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from adapters.bench.results import QUICK, Plan, Results
from adapters.bench.wire import BenchError
from adapters.bench.wire import Progress as Advance

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


class Bars:
    """One progress bar per phase, on stderr (stdout stays clean for --json)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self._current: int | None = None

    def phase(self, name: str, total: int) -> Advance:
        if self._current is not None:
            task = self.progress.tasks[self._current]
            self.progress.update(task.id, completed=task.total)
        task_id = self.progress.add_task(name, total=total)
        self._current = len(self.progress.tasks) - 1
        return lambda done: self.progress.update(task_id, completed=done)


def _urls(amqp_url: str | None, db_url: str | None) -> tuple[str, str]:
    """The URLs given, else HMC_AMQP_URL and HMC_DB_URL when they name RabbitMQ and PostgreSQL, else local."""
    env_amqp, env_db = os.environ.get("HMC_AMQP_URL", ""), os.environ.get("HMC_DB_URL", "")
    amqp = amqp_url or (env_amqp if env_amqp.startswith("amqp") else DEFAULT_AMQP_URL)
    db = db_url or (env_db if env_db.startswith("postgresql") else DEFAULT_DB_URL)
    if not amqp.startswith("amqp"):
        raise typer.BadParameter(f"needs a RabbitMQ URL (amqp://...), not {amqp.split('@')[-1]}; or --embedded")
    if not db.startswith("postgresql"):
        raise typer.BadParameter("needs a PostgreSQL URL (postgresql+psycopg://...); or --embedded for SQLite")
    return amqp, db


def _workers(spec: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(s) for s in spec.split(",") if s.strip()}))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise typer.BadParameter(f"--workers takes counts like 1,2,4, not {spec!r}")
    return counts if 1 in counts else (1, *counts)


def bench(
    embedded: Annotated[
        bool, typer.Option("--embedded", help="memory:// transport and SQLite in this process; no baselines")
    ] = False,
    quick: Annotated[bool, typer.Option("--quick", help="small numbers: done in under a minute")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object instead of the tables")] = False,
    save: Annotated[Path | None, typer.Option(help="also write the JSON object to this file")] = None,
    amqp_url: Annotated[
        str | None, typer.Option(help="RabbitMQ (default: HMC_AMQP_URL if amqp://, else guest@127.0.0.1)")
    ] = None,
    db_url: Annotated[
        str | None,
        typer.Option(
            help="PostgreSQL server; the bench creates and drops a database of its own there "
            "(default: HMC_DB_URL if postgresql, else postgres@127.0.0.1)"
        ),
    ] = None,
    messages: Annotated[int | None, typer.Option("--messages", "-n", help="orders per throughput run")] = None,
    backlog: Annotated[int | None, typer.Option(help="orders in the backlog drain")] = None,
    workers: Annotated[str | None, typer.Option(help="worker counts to scale over, e.g. 1,2,4")] = None,
    rate: Annotated[float, typer.Option(help="offered msg/s of the fixed-rate latency run")] = 200.0,
    batch_size: Annotated[int, typer.Option(help="HMC_BATCH_SIZE of the workers")] = 100,
    batch_wait_ms: Annotated[int, typer.Option(help="HMC_BATCH_WAIT_MS of the workers")] = 20,
    soak: Annotated[int, typer.Option(help="also pass this many orders through one worker, sampling RSS")] = 0,
    profile: Annotated[
        Path | None, typer.Option(help="write py-spy samples of every worker here (needs py-spy installed)")
    ] = None,
    baseline_messages: Annotated[int | None, typer.Option(hidden=True)] = None,
    naive_messages: Annotated[int | None, typer.Option(hidden=True)] = None,
    latency_messages: Annotated[int | None, typer.Option(hidden=True)] = None,
    trickle_messages: Annotated[int | None, typer.Option(hidden=True)] = None,
    saturation_messages: Annotated[int | None, typer.Option(hidden=True)] = None,
    window: Annotated[int | None, typer.Option(hidden=True)] = None,
    worker_command: Annotated[
        str | None, typer.Option(hidden=True, help="run workers with this command (A/B of a candidate build)")
    ] = None,
) -> None:
    """Measure the broker end to end beside a raw pika pass-through and a naive hand-written loop, in one run.

    Figures are ratios to baselines measured side by side: absolute times drift between runs here.
    """
    base = QUICK if quick else Plan()
    chosen: dict[str, Any] = {
        "messages": messages,
        "backlog": backlog,
        "workers": _workers(workers) if workers else None,
        "baseline_messages": baseline_messages,
        "naive_messages": naive_messages,
        "latency_messages": latency_messages,
        "trickle_messages": trickle_messages,
        "saturation_messages": saturation_messages,
        "window": window,
    }
    plan = dataclasses.replace(
        base,
        **{k: v for k, v in chosen.items() if v is not None},
        rate=rate,
        batch_size=batch_size,
        batch_wait_ms=batch_wait_ms,
        soak=soak,
    )
    if embedded:
        plan = dataclasses.replace(plan, workers=(1,))
    stderr = Console(stderr=True)
    columns = (TextColumn("{task.description:<46}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=stderr, transient=as_json) as progress:
            results = _run(plan, embedded, amqp_url, db_url, Bars(progress), profile, worker_command)
    except BenchError as e:
        stderr.print(f"[red]bench failed:[/red] {e}")
        raise typer.Exit(1) from e
    if save is not None:
        save.write_text(json.dumps(results.to_json(), indent=2) + "\n", encoding="utf-8")
    if as_json:
        typer.echo(json.dumps(results.to_json(), indent=2))
    else:
        from adapters.bench.report import print_report

        print_report(results)


def _run(
    plan: Plan,
    embedded: bool,
    amqp_url: str | None,
    db_url: str | None,
    bars: Bars,
    profile: Path | None,
    worker_command: str | None,
) -> Results:
    with tempfile.TemporaryDirectory(prefix="hmc-bench-") as tmp:
        if embedded:
            from adapters.bench.embedded import EmbeddedBench

            return EmbeddedBench(plan, bars, Path(tmp)).run()
        from adapters.bench.run import ServicesBench

        amqp, db = _urls(amqp_url, db_url)
        argv = shlex.split(worker_command) if worker_command else None
        return ServicesBench(plan, amqp, db, bars, Path(tmp), profile, argv).run()


def register(app: typer.Typer) -> None:
    """Add the `bench` command to the `hmc-broker` app (broker/cli.py calls this)."""
    app.command("bench")(bench)
