"""What the console does, once for its pages and its API: each operation takes the authenticated identity,
checks its role, calls replay/ (the same functions as `hmc-broker messages | replay | audit`) and returns
plain data. Pages render it (console/pages.py), the API sends it as JSON (console/api.py).

Every change and every reveal is audited by replay/ with the identity's account name as the operator and
"console" as the OS user; the CLI keeps recording its --operator and OS user as before.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.exports import files
from adapters.exports.files import Export
from adapters.exports.spreadsheet import FORMATS, Format
from broker.config import Settings
from broker.handlers.invoices import ExportRefused
from broker.store import Session, queries, sessionmaker
from broker.store import audit as audit_rows
from console import failures
from console.accounts import OPERATOR, PRIVACY, VIEWER, Identity
from replay import audit, edit, reveal
from replay.export import export
from replay.filters import STATUSES, Filter, FilterError, parse_row_ids, parse_when
from replay.replay import ReplayError
from replay.resolve import resolve as resolve_rows
from replay.search import search, snapshot, summary
from replay.show import details

CHANNEL = "console"  # the audit row's os_user: the action came through the console, not a shell
WINDOWS = {"hour": (timedelta(minutes=5), 12), "day": (timedelta(hours=1), 24), "week": (timedelta(days=1), 7)}
FILTER_FIELDS = ("ids", "status", "type", "direction", "customer", "order", "message_id", "correlation_id", "since",
                 "until", "error", "originals")  # fmt: skip


class Forbidden(PermissionError):
    """The identity's roles do not allow the operation; the message names the role needed."""


class NotFound(LookupError):
    """What was asked for is not in the store."""


# Refusals an operator can act on: shown on the page or sent as 400 with the message.
REFUSALS = (FilterError, audit.AuditRequired, ReplayError, edit.EditRefused)


def need(identity: Identity, role: str) -> None:
    if not identity.may(role):
        raise Forbidden(f"this needs the {role} role; {identity.name} has {', '.join(sorted(identity.roles))}")


def actor(identity: Identity, reason: str | None, what: str) -> audit.Actor:
    if not (reason or "").strip():
        raise audit.AuditRequired(f"{what} is recorded in the audit trail: give a reason (e.g. a ticket)")
    return audit.Actor(identity.name, (reason or "").strip(), os_user=CHANNEL)


# ---------------------------------------------------------------- messages


def message_filter(values: Mapping[str, str]) -> Filter:
    """The `messages list` options from a form or query string; empty fields are left out."""

    def many(name: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in (values.get(name) or "").split(",") if v.strip())

    def one(name: str) -> str | None:
        return (values.get(name) or "").strip() or None

    since, until = one("since"), one("until")
    return Filter(
        ids=parse_row_ids([values.get("ids") or ""]),
        statuses=many("status"),
        types=many("type"),
        direction=one("direction"),
        customers=many("customer"),
        order=one("order"),
        message_id=one("message_id"),
        correlation_id=one("correlation_id"),
        since=parse_when(since) if since else None,
        until=parse_when(until) if until else None,
        error=one("error"),
        originals_only=(values.get("originals") or "") in ("1", "on", "true"),
    )


def list_messages(
    session: Session,
    settings: Settings,
    identity: Identity,
    values: Mapping[str, str],
    *,
    patient: str | None = None,
    reason: str | None = None,
    revealed: bool = False,
    limit: int = 50,
) -> dict[str, Any]:
    """One page of `messages list`; a patient search, and showing the page's patient identifiers in clear
    (`messages list --reveal`), need the privacy role and a reason, and are audited."""
    need(identity, VIEWER)
    f = message_filter(values)
    who = None
    if patient or revealed:
        need(identity, PRIVACY)
        who = actor(identity, reason, "a patient search or a reveal")
    if patient:
        f = replace(f, patient=patient.strip())
    after = (values.get("after") or "").strip() or None
    page = search(session, f, reserve_patterns=settings.reserve_patterns, limit=limit, after=after, actor=who)
    if revealed and who is not None and page.rows:
        reveal.record(session, who, page.rows, "list")
    rows = [summary(r, reveal.patient_in(r.payload) if revealed else None) for r in page.rows]
    return {"messages": rows, "next": page.next, "revealed": revealed}


def show_message(session: Session, identity: Identity, pk: int, reveal_reason: str | None = None) -> dict[str, Any]:
    need(identity, VIEWER)
    who = None
    if reveal_reason is not None:
        need(identity, PRIVACY)
        who = actor(identity, reveal_reason, "a reveal")
    try:
        return details(session, str(pk), reveal_for=who)
    except FilterError as e:
        raise NotFound(str(e)) from None


# ---------------------------------------------------------------- failures


def failure_groups(session: Session, identity: Identity, values: Mapping[str, str]) -> failures.Page:
    """A page of the Failures groups: `by` (type,customer; type; customer; rule), `offset`, `limit`."""
    need(identity, VIEWER)
    by = failures.parse_by(values.get("by"))
    return failures.groups(
        session,
        by,
        limit=int(number(values.get("limit"), failures.PAGE)),
        offset=int(number(values.get("offset"), 0)),
    )


def selection_of(session: Session, body: Mapping[str, Any]) -> tuple[list[int], dict[str, Any]]:
    """Message ids ("ids"), the messages a filter matches now ("filter": the `messages list` fields, as
    `hmc-broker replay --status ...` selects), or a failure group (status, rule, type, customer)."""
    if isinstance(body.get("filter"), Mapping):
        f = message_filter({k: str(v) for k, v in body["filter"].items() if v is not None})
        ids, _ref = snapshot(session, f)
        return ids, {"filter": f.described()}
    raw = body.get("ids")
    if raw:
        ids = list(parse_row_ids([raw] if isinstance(raw, str) else [str(i) for i in raw]))
        return ids, {"ids": ids}
    return failures.group_ids(session, body)


def resolve(session: Session, identity: Identity, body: Mapping[str, Any]) -> dict[int, str]:
    need(identity, OPERATOR)
    who = actor(identity, body.get("reason"), "resolving messages")
    ids, selection = selection_of(session, body)
    if not ids:
        raise FilterError("nothing to resolve: the selection is empty")
    return resolve_rows(session, ids, who, selection)


# ---------------------------------------------------------------- audit


def audit_trail(session: Session, identity: Identity, values: Mapping[str, str], limit: int = 50) -> dict[str, Any]:
    need(identity, VIEWER)

    def one(name: str) -> str | None:
        return (values.get(name) or "").strip() or None

    since, until, before = one("since"), one("until"), one("before")
    if before is not None and not before.isdigit():
        raise FilterError("before is an audit row id")
    query = audit_rows.AuditQuery(
        since=parse_when(since) if since else None,
        until=parse_when(until) if until else None,
        actor=one("actor"),
        action=one("action"),
        limit=limit,
        before=int(before) if before else None,
    )
    rows = [audit.as_dict(r) for r in audit_rows.listing(session, query)]
    return {"entries": rows, "before": rows[-1]["id"] if len(rows) == limit else None}


def record(session: Session, identity: Identity, action: str, reason: str, details: dict[str, Any]) -> None:
    """An audit row for what the console does itself (log in, log out, a refused login)."""
    audit.record(session, audit.Actor(identity.name, reason, os_user=CHANNEL), action, details)
    session.commit()


def export_messages(session: Session, identity: Identity, body: Mapping[str, Any]) -> bytes:
    """`hmc-broker messages export`: the selected messages as JSON lines (summary, properties, payload),
    masked, or revealed with the privacy role; audited with the reason."""
    need(identity, OPERATOR)
    revealed = flag(body.get("reveal"))
    if revealed:
        need(identity, PRIVACY)
    who = actor(identity, body.get("reason"), "an export")
    ids, selection = selection_of(session, body)
    if not ids:
        raise FilterError("nothing to export: the selection is empty")
    out = io.StringIO()
    export(session, ids, out, who, revealed=revealed, selection=selection)
    return out.getvalue().encode()


# ---------------------------------------------------------------- exports

MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "csv": "text/csv"}


def _format(value: Any) -> Format:
    fmt = str(value or "xlsx")
    if fmt not in FORMATS:
        raise FilterError(f"format {fmt!r}: xlsx or csv")
    return fmt


def export_invoice(session: Session, settings: Settings, identity: Identity, body: Mapping[str, Any]) -> Export:
    """A customer's invoice data of a month as a download: for an account with the role invoice:CUSTOMER
    (or admin), and only for a customer with invoice permission; audited, refusals too."""
    need(identity, VIEWER)
    customer, month = str(body.get("customer") or "").strip(), str(body.get("month") or "").strip()
    who = audit.Actor(identity.name, "invoice export (console download)", os_user=CHANNEL)
    try:
        made = files.invoice_data(
            session, settings, who, customer, month, _format(body.get("format")),
            roles=identity.roles, where="download",
        )  # fmt: skip
    except ExportRefused as e:
        raise Forbidden(str(e)) from None
    session.commit()
    return made


def export_prescribers(session: Session, settings: Settings, identity: Identity, body: Mapping[str, Any]) -> Export:
    """The prescriber register of a customer (staff names and HSA-ids: role privacy), audited."""
    need(identity, PRIVACY)
    customer = str(body.get("customer") or "").strip()
    who = audit.Actor(identity.name, "prescriber register export (console download)", os_user=CHANNEL)
    try:
        made = files.prescribers(session, settings, who, customer, _format(body.get("format")), "download")
    except ExportRefused as e:
        raise FilterError(str(e)) from None
    session.commit()
    return made


# ---------------------------------------------------------------- flow


QueueCounts = Callable[[list[str]], dict[str, tuple[int, int] | None]]


def flow(
    sessions: sessionmaker[Session],
    settings: Settings,
    identity: Identity,
    window: str,
    partners: dict[str, str],
    workers: list[str],
    counts: QueueCounts,
) -> dict[str, Any]:
    """The Flow page: per type and status over a window, per slot, backlog, partners, workers."""
    from broker.status import gather

    need(identity, VIEWER)
    if window not in WINDOWS:
        raise FilterError(f"window is one of {', '.join(WINDOWS)}")
    slot, slots = WINDOWS[window]
    end = datetime.now(UTC)
    start = end - slot * slots
    status = gather(settings, sessions, partners, counts)
    found = counts(workers) if workers else {}
    with sessions() as session:
        per_type = queries.counts_since(session, start)
        per_slot = queries.received_per_slot(session, start, slot, slots)
        gauges = queries.backlog(session)
    return {
        "window": window,
        "since": start.isoformat(),
        "slot_seconds": slot.total_seconds(),
        "statuses": list(STATUSES),
        "per_type": [t.__dict__ for t in per_type],
        "per_slot": [{"start": (start + i * slot).isoformat(), "counts": c} for i, c in enumerate(per_slot)],
        "backlog": gauges,
        "partners": [p.__dict__ for p in status.partners],
        "workers": [{"queue": q, "consumers": _consumers(found.get(q))} for q in workers],
    }


def _consumers(counts: tuple[int, int] | None) -> int | None:
    return None if counts is None else counts[1]


def flag(value: Any) -> bool:
    return str(value or "").lower() in ("1", "on", "true", "yes")


def number(value: Any, default: float) -> float:
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise FilterError(f"{value!r} is not a number") from None
