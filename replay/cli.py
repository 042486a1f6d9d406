"""`hmc-broker messages | replay | audit | prune`: operating the message store from a terminal.

Thin entry points over replay/: they read options, call the service functions and print (rich tables on
a terminal, --json for machines). broker/cli.py calls register(app) to add them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from broker.config import Settings
from broker.pipeline import Pipeline
from broker.runtime import Worker
from broker.store import Session, sessionmaker
from broker.store import audit as audit_rows
from broker.store.tables import MessageRow
from replay import audit as audit_trail
from replay import edit as editing
from replay import reveal
from replay.export import export as export_messages
from replay.filters import Filter, FilterError, parse_period, parse_row_ids, parse_when
from replay.prune import Removed, Retention
from replay.prune import prune as prune_store
from replay.replay import Outcome, Replayer, ReplayError
from replay.resolve import resolve as resolve_messages
from replay.search import find, search, snapshot, summary

P = ParamSpec("P")
R = TypeVar("R")


def _out() -> Console:
    """Standard output: a table as wide as the terminal, or wide enough never to cut a line in a pipe."""
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240)


def _err() -> Console:
    return Console(file=sys.stderr, width=None if sys.stderr.isatty() else 240)


# ---------------------------------------------------------------- shared options

Statuses = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        "-s",
        help="received, rejected, forwarded, delivered, answered, parked, skipped, repeat, "
        "replayed, resolved (repeat the option or comma-separate)",
    ),
]
Types = Annotated[list[str] | None, typer.Option("--type", "-t", help="message type, e.g. CustomerOrder (repeatable)")]
Direction = Annotated[
    str | None, typer.Option("--direction", help="inbound (from customer systems) or outbound (from SESAM2)")
]
Customers = Annotated[list[str] | None, typer.Option("--customer", "-c", help="customer number (repeatable)")]
Order = Annotated[str | None, typer.Option("--order", help="the customer's order, work-order, pickup or report id")]
MessageId = Annotated[str | None, typer.Option("--message-id", help="the message's id, or the id of what it sent")]
Correlation = Annotated[str | None, typer.Option("--correlation-id", help="AMQP correlation id")]
Since = Annotated[str | None, typer.Option("--since", help="received at or after: 2026-11-24T03:00, or 6h (ago)")]
Until = Annotated[str | None, typer.Option("--until", help="received before: a time, or a period ago")]
ErrorText = Annotated[str | None, typer.Option("--error", help="text in the last error (case-insensitive)")]
Patient = Annotated[
    str | None, typer.Option("--patient", help="patient identifier; needs --operator and --reason, and is audited")
]
Originals = Annotated[bool, typer.Option("--originals", help="leave out replays")]
Operator = Annotated[str | None, typer.Option("--operator", help="your user id, recorded in the audit trail")]
Reason = Annotated[str | None, typer.Option("--reason", help="why, recorded in the audit trail (e.g. a ticket)")]
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]
Reveal = Annotated[bool, typer.Option("--reveal", help="show patient identifiers in clear (needs --reason; audited)")]
RowIds = Annotated[
    list[str] | None, typer.Option("--id", help="row id: 12 or #12 (repeat the option or comma-separate)")
]
Keys = Annotated[list[str] | None, typer.Argument(help="row ids (12 or #12) or message ids", show_default=False)]


def _filter(
    statuses: list[str] | None,
    types: list[str] | None,
    direction: str | None,
    customers: list[str] | None,
    order: str | None,
    message_id: str | None,
    correlation_id: str | None,
    since: str | None,
    until: str | None,
    error: str | None,
    patient: str | None,
    originals: bool,
    ids: list[str] | None = None,
) -> Filter:
    def split(values: list[str] | None) -> tuple[str, ...]:
        return tuple(v.strip() for item in values or () for v in item.split(",") if v.strip())

    return Filter(
        ids=parse_row_ids(ids or ()),
        statuses=split(statuses),
        types=split(types),
        direction=direction,
        customers=split(customers),
        order=order,
        message_id=message_id,
        correlation_id=correlation_id,
        since=parse_when(since) if since else None,
        until=parse_when(until) if until else None,
        error=error,
        patient=patient,
        originals_only=originals,
    )


def _friendly(command: Callable[P, R]) -> Callable[P, R]:
    """Refusals an operator can act on are one red line and exit 2, not a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (FilterError, audit_trail.AuditRequired, ReplayError, editing.EditRefused) as e:
            _err().print(f"[red]error:[/red] {escape(str(e))}")
            raise typer.Exit(2) from None

    return run


def _store(settings: Settings) -> sessionmaker[Session]:
    from broker.bootstrap import store

    return store(settings)  # migrates, as every worker does at start: the commands need 0002's tables


def _actor(operator: str | None, reason: str | None, what: str) -> audit_trail.Actor:
    return audit_trail.Actor.required(operator, reason, what)


def _when(value: str) -> str:
    return value.replace("T", " ")[:19] + "Z"


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def _rows_for(session: Session, keys: Sequence[str]) -> list[MessageRow]:
    rows: list[MessageRow] = []
    for key in keys:
        found = find(session, key)
        if not found:
            raise FilterError(f"no message {key} in the store")
        rows += found
    return rows


def _selection(
    session: Session,
    settings: Settings,
    keys: list[str] | None,
    f: Filter,
    actor: audit_trail.Actor | None,
) -> tuple[list[int], dict[str, Any]]:
    """Ids named on the command line, or a snapshot of those matching the filter (not both)."""
    if keys and not f.empty:
        raise FilterError("give either message ids or filter options, not both")
    if keys:
        rows = _rows_for(session, keys)
        return [r.id for r in rows], {"ids": keys}
    ids, ref = snapshot(session, f, reserve_patterns=settings.reserve_patterns, actor=actor)
    return ids, {"filter": f.described(ref)}


# ---------------------------------------------------------------- messages

messages_app = typer.Typer(help="Search and inspect the message store.", no_args_is_help=True)


@messages_app.command("list")
@_friendly
def list_messages(
    row_id: RowIds = None,
    status: Statuses = None,
    type_: Types = None,
    direction: Direction = None,
    customer: Customers = None,
    order: Order = None,
    message_id: MessageId = None,
    correlation_id: Correlation = None,
    since: Since = None,
    until: Until = None,
    error: ErrorText = None,
    patient: Patient = None,
    originals: Originals = False,
    limit: Annotated[int, typer.Option("--limit", "-n", help="messages per page (1-1000)")] = 50,
    after: Annotated[str | None, typer.Option("--after", help="the cursor the previous page printed")] = None,
    operator: Operator = None,
    reason: Reason = None,
    reveal_ids: Reveal = False,
    as_json: AsJson = False,
) -> None:
    """Search messages, newest first, one page at a time."""
    settings = Settings.from_env()
    f = _filter(
        status,
        type_,
        direction,
        customer,
        order,
        message_id,
        correlation_id,
        since,
        until,
        error,
        patient,
        originals,
        ids=row_id,
    )
    needs_actor = bool(patient) or reveal_ids
    actor = _actor(operator, reason, "a patient search or a reveal") if needs_actor else None
    with _store(settings)() as session:
        page = search(session, f, reserve_patterns=settings.reserve_patterns, limit=limit, after=after, actor=actor)
        if reveal_ids and actor is not None and page.rows:
            reveal.record(session, actor, page.rows, "list")
        items = [summary(r, reveal.patient_in(r.payload) if reveal_ids else None) for r in page.rows]
    if as_json:
        _print_json({"messages": items, "next": page.next})
        return
    table = Table(show_lines=False, header_style="bold")
    for column in (
        "id",
        "received (UTC)",
        "dir",
        "type",
        "customer",
        "status",
        "correlation",
        "patient",
        "try",
        "error",
    ):
        table.add_column(column, overflow="fold")
    for item in items:
        replay_mark = f" ↻{item['replay_of']}" if item["replay_of"] else ""
        cells = (
            f"{item['id']}{replay_mark}",
            _when(item["received_at"]),
            "in" if item["direction"] == "inbound" else "out",
            item["type"] or "-",
            item["customer"] or "-",
            item["status"],
            item["correlation_id"] or "-",
            item["patient"] or "-",
            str(item["attempts"]),
            (item["error"] or "")[:160],
        )
        table.add_row(*(escape(cell) for cell in cells))  # a "[patient-ref:...]" is text, not markup
    _out().print(table)
    if page.next:
        _err().print(f"more: --after {page.next}")
    elif not items:
        _err().print("no message matches")


@messages_app.command("show")
@_friendly
def show_message(
    key: Annotated[str, typer.Argument(help="row id (12 or #12) or message id")],
    reveal_ids: Reveal = False,
    operator: Operator = None,
    reason: Reason = None,
    as_json: AsJson = False,
) -> None:
    """One message: properties, every event and attempt, its payload and what was published."""
    from replay.show import details

    settings = Settings.from_env()
    actor = _actor(operator, reason, "a reveal") if reveal_ids else None
    with _store(settings)() as session:
        doc = details(session, key, reveal_for=actor)
    if as_json:
        _print_json(doc)
        return
    _print_details(doc)


def _print_details(doc: dict[str, Any]) -> None:
    m = doc["message"]
    _out().rule(f"message #{m['id']}  {m['type'] or '?'}  {m['status']}")
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    for label, value in (
        ("message id", m["message_id"]),
        ("received", m["received_at"]),
        ("direction", m["direction"]),
        ("customer", m["customer"]),
        ("correlation id", m["correlation_id"]),
        ("order", m["order_ref"]),
        ("patient", m["patient"]),
        ("replay of", f"#{m['replay_of']}" if m["replay_of"] else None),
        ("last error", m["error"]),
    ):
        if value:
            head.add_row(label, escape(str(value)))
    for name, value in doc["properties"].items():
        if value and name != "replay":
            head.add_row(
                f"amqp {name}", escape(json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value))
            )
    _out().print(head)
    note = doc["properties"].get("replay")
    if note:
        _out().print(
            f"[bold]replay[/bold] of #{note['of']} (from #{note['source']}) by {escape(note['operator'])}: "
            f"{escape(note['reason'])}{' (forced)' if note.get('force') else ''}"
        )
        if note.get("diff"):
            _out().print(note["diff"], markup=False, highlight=False)
    attempts = Table(title="attempts", title_justify="left", header_style="bold")
    for column in ("row", "received", "status", "by", "error"):
        attempts.add_column(column, overflow="fold")
    for a in doc["attempts"]:
        mark = " (this)" if a["id"] == m["id"] else ""
        attempts.add_row(
            f"#{a['id']}{mark}", _when(a["received_at"]), a["status"], escape(a["by"] or "-"), escape(a["error"] or "")
        )
    _out().print(attempts)
    events = Table(title="events", title_justify="left", header_style="bold")
    for column in ("row", "at", "stage", "outcome", "ms", "detail"):
        events.add_column(column, overflow="fold")
    for e in doc["events"]:
        ms = f"{e['duration_ms']:.2f}" if e["duration_ms"] is not None else ""
        events.add_row(f"#{e['message']}", _when(e["at"]), e["stage"], e["outcome"], ms, escape(e["detail"] or ""))
    _out().print(events)
    published = Table(title="published", title_justify="left", header_style="bold")
    for column in ("row", "message id", "type", "exchange / routing key", "status", "tries", "sent", "error"):
        published.add_column(column, overflow="fold")
    for o in doc["published"]:
        published.add_row(
            f"#{o['message']}",
            o["message_id"],
            o["type"],
            escape(f"{o['exchange']} / {o['routing_key']}"),
            o["status"],
            str(o["attempts"]),
            _when(o["sent_at"]) if o["sent_at"] else "-",
            escape(o["error"] or ""),
        )
    _out().print(published)
    masked = "" if doc["revealed"] else " (patient identifiers masked; --reveal --reason to show)"
    _out().rule(f"payload{masked}")
    _out().print(doc["payload"] if doc["payload"] is not None else "(pruned)", markup=False, highlight=False)
    for o in doc["published"]:
        _out().rule(f"sent as {o['type']} {o['message_id']}")
        _out().print(o["body"] if o["body"] is not None else "(pruned)", markup=False, highlight=False)


@messages_app.command("export")
@_friendly
def export_command(
    keys: Keys = None,
    output: Annotated[Path, typer.Option("--out", "-o", help="file to write (JSON lines); - for stdout")] = Path("-"),
    status: Statuses = None,
    type_: Types = None,
    direction: Direction = None,
    customer: Customers = None,
    order: Order = None,
    message_id: MessageId = None,
    correlation_id: Correlation = None,
    since: Since = None,
    until: Until = None,
    error: ErrorText = None,
    patient: Patient = None,
    originals: Originals = False,
    operator: Operator = None,
    reason: Reason = None,
    reveal_ids: Reveal = False,
) -> None:
    """Export messages with their payloads as JSON lines (always audited)."""
    settings = Settings.from_env()
    actor = _actor(operator, reason, "an export")
    f = _filter(
        status, type_, direction, customer, order, message_id, correlation_id, since, until, error, patient, originals
    )
    with _store(settings)() as session:
        ids, selection = _selection(session, settings, keys, f, actor)
        with _open(output) as stream:
            count = export_messages(session, ids, stream, actor, revealed=reveal_ids, selection=selection)
    _err().print(f"exported {count} message(s) to {output}")


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Any]:
    if str(path) == "-":
        yield sys.stdout
        return
    with path.open("w", encoding="utf-8") as stream:
        yield stream


@messages_app.command("resolve")
@_friendly
def resolve_command(
    keys: Keys = None,
    status: Statuses = None,
    type_: Types = None,
    direction: Direction = None,
    customer: Customers = None,
    order: Order = None,
    message_id: MessageId = None,
    correlation_id: Correlation = None,
    since: Since = None,
    until: Until = None,
    error: ErrorText = None,
    patient: Patient = None,
    operator: Operator = None,
    reason: Reason = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask before resolving many")] = False,
    as_json: AsJson = False,
) -> None:
    """Close rejected or parked messages that need no replay (then retention may prune them)."""
    settings = Settings.from_env()
    actor = _actor(operator, reason, "resolving messages")
    f = _filter(
        status, type_, direction, customer, order, message_id, correlation_id, since, until, error, patient, False
    )
    with _store(settings)() as session:
        ids, selection = _selection(session, settings, keys, f, actor)
        if not keys and len(ids) > 1 and not yes:
            typer.confirm(f"Resolve {len(ids)} messages?", abort=True, err=as_json)  # stdout holds only the JSON
        result = resolve_messages(session, ids, actor, selection)
    if as_json:
        typer.echo(json.dumps({"resolved": [{"id": pk, "outcome": what} for pk, what in result.items()]}))
        return
    for pk, what in result.items():
        _out().print(f"#{pk}: {escape(what)}")


@messages_app.command("bench")
@_friendly
def bench_command(
    rows: Annotated[int, typer.Option("--rows", help="messages to seed into an empty store")] = 1_000_000,
    repeat: Annotated[int, typer.Option("--repeat", help="runs of each search (the median is reported)")] = 5,
    reuse: Annotated[bool, typer.Option("--reuse", help="measure a store seeded by an earlier run")] = False,
    as_json: AsJson = False,
) -> None:
    """Benchmark search on a large store (HMC_DB_URL must be an empty, disposable database)."""
    from replay.bench import run as run_bench

    settings = Settings.from_env()
    # With --json the timings are one JSON object on stdout; the seeding's progress and the table on stderr.
    results = run_bench(_store(settings), rows=rows, repeat=repeat, reuse=reuse, console=_err() if as_json else _out())
    if as_json:
        typer.echo(json.dumps({"repeat": repeat, "searches": results}))


# ---------------------------------------------------------------- replay


def replay_command(
    keys: Keys = None,
    status: Statuses = None,
    type_: Types = None,
    direction: Direction = None,
    customer: Customers = None,
    order: Order = None,
    message_id: MessageId = None,
    correlation_id: Correlation = None,
    since: Since = None,
    until: Until = None,
    error: ErrorText = None,
    patient: Patient = None,
    operator: Operator = None,
    reason: Reason = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would happen; change nothing")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="send again what was delivered already (consumers see it twice)")
    ] = False,
    edit: Annotated[bool, typer.Option("--edit", help="edit the payload in $EDITOR first (one message)")] = False,
    payload: Annotated[
        Path | None, typer.Option("--payload", help="replay this file instead of the stored payload (one message)")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="messages per transaction")] = 50,
    rate: Annotated[float, typer.Option("--rate", help="at most this many messages a second (0: no limit)")] = 20.0,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask before replaying many")] = False,
    resume: Annotated[int | None, typer.Option("--resume", help="go on with an interrupted replay job")] = None,
    jobs: Annotated[bool, typer.Option("--jobs", help="list recent replay jobs")] = False,
    as_json: AsJson = False,
) -> None:
    """Replay messages through the whole pipeline again: one, several, or all matching a filter."""
    settings = Settings.from_env()
    if jobs:
        _print_jobs(_offline(settings), as_json)
        return
    actor = _actor(operator, reason, "a replay")
    if (edit or payload) and (resume or not keys or len(keys) != 1):
        raise FilterError("--edit and --payload replay exactly one message: name it by its id")
    if batch_size < 1 or rate < 0:
        raise FilterError("--batch-size is at least 1 and --rate at least 0")
    if not dry_run and settings.amqp_url.startswith("memory://"):
        raise ReplayError(
            "replay publishes through RabbitMQ, and HMC_AMQP_URL is memory:// (in-process only): set "
            "HMC_AMQP_URL, or use --dry-run"
        )
    worker = None if dry_run else _worker(settings)
    replayer = _offline(settings) if worker is None else Replayer.of(worker)
    try:
        if resume is not None:
            job = replayer.resume(resume, actor)
            outcomes = _run_job(replayer, job.id, job.total, job.done, batch_size, rate)
        else:
            f = _filter(
                status,
                type_,
                direction,
                customer,
                order,
                message_id,
                correlation_id,
                since,
                until,
                error,
                patient,
                False,
            )
            outcomes = _replay(replayer, settings, actor, keys, f, dry_run, force, edit, payload, batch_size, rate, yes)
    finally:
        if worker is not None:
            worker.transport.close()
    _print_outcomes(outcomes, dry_run, as_json)
    if any(o.status in ("rejected", "parked", "pruned", "not-replayed") for o in outcomes):
        raise typer.Exit(1)


def _replay(
    replayer: Replayer,
    settings: Settings,
    actor: audit_trail.Actor,
    keys: list[str] | None,
    f: Filter,
    dry_run: bool,
    force: bool,
    edit: bool,
    payload: Path | None,
    batch_size: int,
    rate: float,
    yes: bool,
) -> list[Outcome]:
    with replayer.sessions() as session:
        ids, selection = _selection(session, settings, keys, f, actor)
        sources, pruned = replayer.sources(session, ids, strict=bool(keys))
    if pruned:
        _err().print(
            f"left out, payload pruned: {', '.join(f'#{pk}' for pk in pruned[:20])}{' ...' if len(pruned) > 20 else ''}"
        )
    if not sources:
        _err().print("nothing to replay")
        return []
    body = diff = None
    if edit or payload:
        (source,) = sources[-1:]
        stored = source.payload or b""
        body = payload.read_bytes() if payload else editing.in_editor(stored, f"message-{source.id}.xml")
        editing.check(stored, body)
        diff = editing.unified_diff(stored, body, f"message-{source.id}.xml")
        selection = {**selection, "edit": True, "diff": reveal.text_of(diff.encode(), revealed=False)}
        sources = [source]
        _err().print(diff, markup=False, highlight=False)
    if dry_run:
        return replayer.dry_run(sources, actor, force=force, selection=selection, body=body, diff=diff)
    if not keys and len(sources) > 1 and not yes:
        typer.confirm(f"Replay {len(sources)} messages?", abort=True)
    job = replayer.start(sources, actor, force=force, selection=selection, action="edit" if body else "replay")
    _err().print(f"replay job {job}: {len(sources)} message(s)")
    return _run_job(replayer, job, len(sources), 0, batch_size, rate, body=body, diff=diff)


def _run_job(
    replayer: Replayer,
    job: int,
    total: int,
    done: int,
    batch_size: int,
    rate: float,
    *,
    body: bytes | None = None,
    diff: str | None = None,
) -> list[Outcome]:
    """Run a job with a progress bar; Ctrl-C stops it after the batch in hand (twice: at once)."""
    stop = threading.Event()

    def interrupt(_signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        _err().print("stopping after this batch (Ctrl-C again to stop at once)")

    previous = (
        signal.signal(signal.SIGINT, interrupt) if threading.current_thread() is threading.main_thread() else None
    )
    columns = (TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, console=_err(), transient=True, disable=total <= 1) as progress:
            task = progress.add_task("replay", total=total, completed=done)
            outcomes = replayer.run(
                job,
                batch_size=batch_size,
                rate=rate,
                body=body,
                diff=diff,
                progress=lambda n: progress.advance(task, n),
                stop=stop.is_set,
            )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if stop.is_set():
        _err().print(f"interrupted: resume with  hmc-broker replay --resume {job} --operator USER-ID --reason TEXT")
    return outcomes


def _print_outcomes(outcomes: list[Outcome], dry_run: bool, as_json: bool) -> None:
    if as_json:
        _print_json({"dry_run": dry_run, "outcomes": [o.as_dict() for o in outcomes]})
        return
    table = Table(title="dry run: nothing was changed" if dry_run else None, header_style="bold")
    for column in ("message", "original", "replay", "outcome", "sent" if not dry_run else "would send", "note"):
        table.add_column(column, overflow="fold")
    for o in outcomes[:200]:
        note = "; ".join([*(f"already sent: {h}" for h in o.held_back), *([o.error] if o.error else [])])
        table.add_row(
            f"#{o.source}",
            f"#{o.original}",
            f"#{o.replay}" if o.replay else "-",
            o.status,
            escape("\n".join(o.sent) or "-"),
            escape(note),
        )
    if outcomes:
        _out().print(table)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    more = " (first 200 shown)" if len(outcomes) > 200 else ""
    _err().print(", ".join(f"{n} {status}" for status, n in sorted(counts.items())) + more)


def _print_jobs(replayer: Replayer, as_json: bool) -> None:
    jobs = replayer.jobs()
    rows: list[dict[str, Any]] = [
        {
            "job": j.id,
            "created_at": j.created_at.isoformat(),
            "operator": j.actor,
            "reason": j.reason,
            "status": j.status,
            "done": j.done,
            "total": j.total,
            "force": j.force,
            "selection": j.details.get("filter") or j.details.get("ids"),
        }
        for j in jobs
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table(header_style="bold")
    for column in ("job", "created", "operator", "status", "done", "reason", "selection"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["job"]),
            _when(r["created_at"]),
            escape(r["operator"]),
            r["status"],
            f"{r['done']}/{r['total']}",
            escape(r["reason"]),
            escape(json.dumps(r["selection"], ensure_ascii=False)),
        )
    _out().print(table)


def _offline(settings: Settings) -> Replayer:
    """A replayer for dry runs and listings: the pipeline and the store, no transport."""
    from broker.bootstrap import catalog
    from broker.observability.logs import for_a_command

    for_a_command()  # the pipeline's log lines to stderr: stdout is the command's table or JSON

    return Replayer(_store(settings), Pipeline(settings, catalog(settings)))


def _worker(settings: Settings) -> Worker:
    from broker.bootstrap import worker
    from broker.observability.logs import for_a_command

    for_a_command()  # the worker's log lines to stderr: stdout is the command's table or JSON

    return worker(settings)  # the real transport: confirms, exactly as a running worker publishes


# ---------------------------------------------------------------- audit and prune


@_friendly
def audit_command(
    since: Since = None,
    until: Until = None,
    actor: Annotated[str | None, typer.Option("--actor", help="operator user id")] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action", help="search, reveal, replay, edit, replay-dry-run, replay-resume, export, resolve, prune"
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 50,
    before: Annotated[int | None, typer.Option("--before", help="page on: entries older than this id")] = None,
    as_json: AsJson = False,
) -> None:
    """The audit trail: who replayed, edited, revealed, exported, resolved, pruned or searched a patient."""
    settings = Settings.from_env()
    query = audit_rows.AuditQuery(
        since=parse_when(since) if since else None,
        until=parse_when(until) if until else None,
        actor=actor,
        action=action,
        limit=limit,
        before=before,
    )
    with _store(settings)() as session:
        rows = [audit_trail.as_dict(r) for r in audit_rows.listing(session, query)]
    if as_json:
        _print_json(rows)
        return
    table = Table(header_style="bold")
    for column in ("id", "at (UTC)", "actor", "os user", "action", "reason", "details"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            str(r["id"]),
            _when(r["at"]),
            escape(r["actor"]),
            escape(r["os_user"] or "-"),
            r["action"],
            escape(r["reason"]),
            escape(json.dumps(r["details"], ensure_ascii=False)[:400]),
        )
    _out().print(table)
    if len(rows) == limit:
        _err().print(f"more: --before {rows[-1]['id']}")


@_friendly
def prune_command(
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="keep at least this long, e.g. 90d (never less than HMC_RETENTION)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say what would be removed; remove nothing")] = False,
    operator: Operator = None,
    reason: Annotated[str, typer.Option("--reason", help="recorded in the audit trail")] = "retention policy",
    as_json: AsJson = False,
) -> None:
    """Remove payloads of settled messages past their retention (HMC_RETENTION, per type)."""
    settings = Settings.from_env()
    retention = Retention.from_env()
    period = parse_period(older_than) if older_than else None
    actor = audit_trail.Actor("(dry run)", reason) if dry_run else _actor(operator, reason, "pruning")
    removed = prune_store(_store(settings), retention, older_than=period, actor=actor, dry_run=dry_run)
    _print_removed(removed, dry_run, as_json)


def _print_removed(removed: list[Removed], dry_run: bool, as_json: bool) -> None:
    if as_json:
        _print_json({"dry_run": dry_run, "removed": [r.as_dict() for r in removed]})
        return
    verb = "would remove" if dry_run else "removed"
    table = Table(title="payloads a prune would remove" if dry_run else "payloads removed", header_style="bold")
    for column in ("type", "kept (days)", "received before", "messages", "payload bytes"):
        table.add_column(column, justify="right" if column in ("messages", "payload bytes", "kept (days)") else "left")
    for r in removed:
        table.add_row(
            r.message_type,
            f"{r.keep.total_seconds() / 86400:g}",
            _when(r.cutoff.isoformat()),
            f"{r.messages:,}",
            f"{r.payload_bytes:,}",
        )
    _out().print(table)
    _err().print(
        f"{verb} {sum(r.messages for r in removed):,} payload(s); rejected and parked messages are kept until resolved"
    )


def register(app: typer.Typer) -> None:
    """Add the store operations to the `hmc-broker` command."""
    app.add_typer(messages_app, name="messages")
    app.command("replay")(_friendly(replay_command))
    app.command("audit")(audit_command)
    app.command("prune")(prune_command)
