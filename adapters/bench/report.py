"""The bench's readable output: throughput side by side, latency, backlog, memory, scaling, targets."""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table

from adapters.bench.results import Results


def _n(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def render(r: Results) -> Group:
    plan = r.plan
    figures = r.key_figures()
    head = Table.grid(padding=(0, 1))
    head.add_row("[bold]HMC Broker bench[/bold]", f"{r.mode}: {r.target}")
    head.add_row(
        "",
        f"batch {plan.batch_size}, batch wait {plan.batch_wait_ms} ms, partitions {r.partitions}, "
        f"run took {r.elapsed_s:,.0f} s",
    )

    paths = Table(title="Throughput (messages per second, 10%-90% of each run)", title_justify="left")
    for column in ("path", "messages", "msg/s", "vs raw", "vs naive"):
        paths.add_column(column, justify="left" if column == "path" else "right")
    base, naive = r.baseline_msgs_per_s, r.naive_msgs_per_s

    def row(label: str, count: int | None, rate: float | None) -> None:
        vs_raw = rate / base if rate is not None and base else None
        vs_naive = rate / naive if rate is not None and naive else None
        paths.add_row(label, _n(count), _n(rate), _x(vs_raw), _x(vs_naive))

    if base is None:
        paths.add_row("raw pika pass-through", "-", "n/a (embedded: no AMQP server)", "", "")
        paths.add_row("naive hand-written loop", "-", "n/a (embedded)", "", "")
    else:
        row(f"raw pika pass-through (window {plan.window})", plan.baseline_messages, base)
        row("naive: validate, insert+commit, blocking confirm, ack", plan.naive_messages, naive)
    row("broker customer -> SESAM2, 1 worker", plan.messages, r.pipeline_msgs_per_s)
    row("broker SESAM2 -> customer, 1 worker", plan.messages, r.return_msgs_per_s)

    latency = Table(title="Latency, publish to arrival on sesam2.in (ms)", title_justify="left")
    for column in ("offered", "messages", "achieved msg/s", "p50", "p95", "p99"):
        latency.add_column(column, justify="left" if column == "offered" else "right")
    for run in (r.trickle, r.fixed, r.saturation):
        if run is not None:
            latency.add_row(
                run.offered,
                _n(len(run.seconds)),
                _n(run.msgs_per_s),
                _n(run.percentile(50), 1),
                _n(run.percentile(95), 1),
                _n(run.percentile(99), 1),
            )

    scaling = Table(title="Scaling, customer -> SESAM2", title_justify="left")
    for column in ("workers", "msg/s", "vs 1 worker", "vs raw"):
        scaling.add_column(column, justify="right")
    one = r.workers.get(1)
    for count, rate in sorted(r.workers.items()):
        scaling.add_row(str(count), _n(rate), _x(rate / one if one else None), _x(rate / base if base else None))

    other = Table.grid(padding=(0, 1))
    growth = figures["rss_growth_mb"]
    other.add_row("backlog", f"{plan.backlog:,} orders drained in {r.drain_s:,.1f} s")
    other.add_row(
        "worker RSS",
        f"peak {r.rss_mb:,.0f} MB; growth after warm-up over the backlog: {_n(growth, 1)} MB",
    )
    if r.soak_rss.samples:
        other.add_row(
            "soak",
            f"{plan.soak:,} orders: RSS "
            + ", ".join(
                f"{_n(rss, 0)} MB at {done:,}"
                for done, rss in r.soak_rss.samples[:: max(1, len(r.soak_rss.samples) // 6)]
            ),
        )
    if r.stage_us:
        other.add_row(
            "CPU per order",
            ", ".join(f"{k} {v:,.0f} us" for k, v in r.stage_us.items())
            + f": at most {_n(r.cpu_bound_msgs_per_s)} msg/s per worker from these stages alone",
        )
    if r.worker_cpu_us:
        other.add_row("worker CPU", f"{r.worker_cpu_us:,.0f} us per order (its own CPU time, customer -> SESAM2)")
    if r.stage_floor_us is not None:
        other.add_row(
            "stage floor",
            f"lxml parse + XSD {r.stage_floor_us:,.0f} us per order; stages cost {_x(r.stage_ratio)} that",
        )
    if r.store:
        other.add_row("store", ", ".join(f"{status} {n:,}" for status, n in r.store.items()))

    targets = Table(title="Targets (shown, never gated)", title_justify="left")
    for column in ("target", "value", "wanted", "met"):
        targets.add_column(column, justify="left" if column == "target" else "right")
    for t in r.targets():
        met = "-" if t["met"] is None else ("[green]yes[/green]" if t["met"] else "[red]no[/red]")
        targets.add_row(t["what"], _n(t["value"], 2), t["target"], met)

    parts: list[Table] = [head, paths, latency, scaling, other, targets]
    notes = Table.grid()
    for note in r.notes:
        notes.add_row(f"note: {note}")
    return Group(*parts, notes)


def print_report(r: Results, console: Console | None = None) -> None:
    (console or Console()).print(render(r))
