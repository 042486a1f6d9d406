"""`hmc-broker soak`: the broker under steady traffic for a long time, with a worker restarted every few minutes.

Workers run as child processes (`python -m broker.cli run`); customer orders (orders of several messages)
go out with pika at a steady rate, sesam2.in is consumed with pika, a worker is restarted every
`--restart-every` seconds (SIGTERM, or every other time kill -9 with `--kill`), and each worker's RSS is
sampled. At the end the checker (adapters/harness/checker.py) compares sent with arrived by message id.
Exit code 0 only when nothing was lost, duplicated under another id or reordered, and no worker ended by
itself (one that does is started again, as a supervisor would, and reported).
Not part of CI: `hmc-broker soak --minutes 30 --rate 20 --restart-every 300`.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any
from uuid import uuid4

import typer
from rich.console import Console
from rich.table import Table

from adapters.amqp.topology import Names, TopologySettings
from adapters.amqp.transport import declare_topology
from adapters.harness.checker import Report, Sent, check, forwarded_id
from adapters.harness.cleanup import delete_topology
from adapters.harness.reliability import Collector, Feed, WorkerPool, consuming, orders, parked, worker_env
from broker.bootstrap import store
from broker.config import Settings
from broker.model.codes import Side

console = Console()
PARTITIONS = 2
STEPS = 5  # messages per order


@dataclass
class Soak:
    minutes: float
    rate: float
    restart_every_s: float
    workers: int
    samples: list[dict[str, Any]] = field(default_factory=list)  # at_s, rss_mb per worker, sent, arrived
    restarts: list[dict[str, Any]] = field(default_factory=list)  # at_s, worker, how
    crashes: list[dict[str, Any]] = field(default_factory=list)  # workers that ended by themselves
    report: dict[str, Any] = field(default_factory=dict)
    drain_s: float | None = None
    log_dir: str = ""

    @property
    def ok(self) -> bool:
        """Nothing lost, duplicated under another id or reordered, and no worker ended by itself."""
        return bool(self.report.get("ok")) and not self.crashes


def run(
    amqp_url: str,
    db_url: str,
    *,
    minutes: float,
    rate: float,
    restart_every_s: float,
    sample_every_s: float = 30.0,
    workers: int = 2,
    kill: bool = False,
    prefix: str | None = None,
    log_dir: Path | None = None,
    progress: Console | None = None,
) -> Soak:
    prefix = prefix or f"soak{uuid4().hex[:6]}."
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="hmc-soak-"))
    env = worker_env(amqp_url, db_url, prefix, HMC_PARTITIONS=str(PARTITIONS))
    settings = Settings.from_env(env)
    declare_topology(settings)
    store(settings).kw["bind"].dispose()  # migrate once, before the workers
    names = Names(prefix)
    result = Soak(minutes, rate, restart_every_s, workers, log_dir=str(log_dir))
    collector = Collector(amqp_url, names.sesam2_queue)
    pool = WorkerPool(env, workers, log_dir, [sys.executable, "-m", "broker.cli", "run"])
    feed = Feed(amqp_url)
    sent: list[Sent] = []
    restarters: list[threading.Thread] = []
    try:
        if not consuming(amqp_url, names.inbound_queues(Side.CUSTOMER, PARTITIONS)):
            raise RuntimeError(f"the workers did not start consuming:\n{pool.tails()}")
        start = time.monotonic()
        end = start + minutes * 60
        next_restart, next_sample, turn = start + restart_every_s, start, 0
        traffic = orders(10**9, STEPS, names)
        while (now := time.monotonic()) < end:
            # Steady rate: the n-th message goes out at start + n / rate.
            due = start + len(sent) / rate
            if now < due:
                time.sleep(min(due - now, 0.05))
            else:
                message, one = next(traffic)
                feed.publish(message)
                sent.append(one)
            if now >= next_sample:
                for index, code, tail in pool.crashed():  # the supervisor's job: note it, start it again
                    result.crashes.append({"at_s": round(now - start), "worker": index, "exit": code, "log": tail})
                    pool.restart(index)
                result.samples.append(_sample(now - start, pool, len(sent), collector.count()))
                next_sample += sample_every_s
                if progress is not None:
                    progress.print(_sample_line(result.samples[-1]))
            if now >= next_restart:
                index, how = turn % workers, "kill -9" if kill and turn % 2 else "SIGTERM"
                # In a thread: a worker finishing its batch on SIGTERM must not hold up the steady rate.
                restarting = threading.Thread(target=pool.restart, args=(index,), kwargs={"kill": how == "kill -9"})
                restarting.start()
                restarters.append(restarting)
                result.restarts.append({"at_s": round(now - start), "worker": index, "how": how})
                next_restart += restart_every_s
                turn += 1
        for restarting in restarters:
            restarting.join()
        published_at = time.monotonic()
        expected = {forwarded_id(s.message_id): s.message_id for s in sent}
        deadline = published_at + 180
        while time.monotonic() < deadline:
            missing = set(expected) - {a.message_id for a in collector.arrivals}
            if not missing or {expected[i] for i in missing} <= set(parked(db_url)):
                break
            time.sleep(1.0)
        result.drain_s = round(time.monotonic() - published_at, 1)
        time.sleep(1.0)  # late repeats count too
        result.samples.append(_sample(time.monotonic() - start, pool, len(sent), collector.count()))
    finally:
        arrivals = collector.stop()
        pool.stop()
        feed.close()
    report: Report = check(sent, arrivals, parked(db_url))
    result.report = report.as_dict()
    delete_topology(amqp_url, TopologySettings(prefix=prefix, partitions=PARTITIONS, customers=("1001",)))
    return result


def _sample(at_s: float, pool: WorkerPool, sent: int, arrived: int) -> dict[str, Any]:
    return {"at_s": round(at_s), "rss_mb": [round(r, 1) for r in pool.rss_mb()], "sent": sent, "arrived": arrived}


def _sample_line(s: dict[str, Any]) -> str:
    rss = ", ".join(f"{r:.1f}" for r in s["rss_mb"])
    return f"{s['at_s']:>6} s  RSS MB [{rss}]  sent {s['sent']}  arrived {s['arrived']}"


def soak(
    minutes: Annotated[float, typer.Option(min=0.05, help="how long to publish")] = 30.0,
    rate: Annotated[float, typer.Option(min=0.1, help="messages per second, steady")] = 20.0,
    restart_every: Annotated[float, typer.Option(min=1, help="seconds between worker restarts")] = 300.0,
    kill: Annotated[bool, typer.Option(help="every other restart is kill -9 instead of SIGTERM")] = False,
    workers: Annotated[int, typer.Option(min=1, help="worker processes")] = 2,
    sample_every: Annotated[float, typer.Option(min=1, help="seconds between RSS samples")] = 30.0,
    amqp_url: Annotated[str, typer.Option(envvar="HMC_AMQP_URL")] = "amqp://guest:guest@127.0.0.1:5672/%2F",
    db_url: Annotated[
        str, typer.Option(envvar="HMC_DB_URL", help="the store (PostgreSQL; shared by the workers)")
    ] = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable result on stdout")] = False,
) -> None:
    """Soak test: steady traffic, a worker restarted every few minutes, memory over time, loss (must be 0)."""
    result = run(
        amqp_url,
        db_url,
        minutes=minutes,
        rate=rate,
        restart_every_s=restart_every,
        sample_every_s=sample_every,
        workers=workers,
        kill=kill,
        progress=Console(stderr=True) if as_json else console,  # with --json, stdout holds the result alone
    )
    if as_json:
        typer.echo(json.dumps({**asdict(result), "ok": result.ok}))
    else:
        _print(result)
    raise typer.Exit(0 if result.ok else 1)


def _print(result: Soak) -> None:
    table = Table(title="Memory over time (RSS of each worker, MB)")
    for column in ("at s", "RSS MB per worker", "sent", "arrived"):
        table.add_column(column, justify="right")
    for s in result.samples:
        table.add_row(str(s["at_s"]), " / ".join(f"{r:.1f}" for r in s["rss_mb"]), str(s["sent"]), str(s["arrived"]))
    console.print(table)
    restarts = ", ".join(f"{r['at_s']} s worker{r['worker']} {r['how']}" for r in result.restarts) or "none"
    console.print(f"restarts: {restarts}")
    for c in result.crashes:
        ended = f"worker{c['worker']} ended by itself (exit {c['exit']}) near {c['at_s']} s"
        console.print(f"[red]{ended}[/red]: {c['log']}")
    r = result.report
    console.print(
        f"sent {r['sent']}, delivered {r['delivered']}, parked {r['parked']}, lost {r['lost']}, repeats under the "
        f"same id {r['repeats_same_id']} (allowed), duplicates under other ids {r['duplicates_other_id']}, "
        f"unexpected {r['unexpected']}, orders out of order {r['out_of_order']}; drained {result.drain_s} s after "
        f"the last publish; worker logs in {result.log_dir}"
    )
    console.print("[green]OK[/green]: nothing lost" if result.ok else f"[red]FAILED[/red]: {r.get('examples')}")


def register(app: typer.Typer) -> None:
    """Add `soak` to the `hmc-broker` command (broker/cli.py lists it in EDGES)."""
    app.command("soak")(soak)
