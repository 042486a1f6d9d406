"""The operators' reads of the message store: selections, keyset pages, a message's family and history.

replay/ decides what a search, a replay or an export means (replay/search.py, replay/replay.py); these are
the statements it runs. Every criterion maps onto an index of the messages table (status, type, customer
and time; correlation id; order reference; patient_ref; a trigram index on the last error on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, insert, or_, select, tuple_
from sqlalchemy.orm import Session

from broker.store.tables import EVENTS, EventRow, MessageRow, OrderRow, OutboxRow


@dataclass(frozen=True)
class Criteria:
    """What messages are selected by; replay/filters.py's Filter adds what an operator may type."""

    ids: tuple[int, ...] = ()  # row ids (messages.id)
    statuses: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    direction: str | None = None  # inbound (from customers) / outbound (from SESAM2)
    customers: tuple[str, ...] = ()
    order: str | None = None  # the customer's order id (or work-order, pickup, report id)
    message_id: str | None = None  # the message's own id, or the id of anything it sent
    correlation_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    error: str | None = None  # text in the last error, case-insensitive
    # A patient identifier in clear: never compared as such, the rows are matched on its patient_ref.
    patient: str | None = None
    originals_only: bool = False  # leave out replays


def _where(c: Criteria, patient_ref: str | None) -> list[ColumnElement[bool]]:
    m = MessageRow
    out: list[ColumnElement[bool]] = []
    if c.ids:
        out.append(m.id.in_(c.ids))
    if c.statuses:
        out.append(m.status.in_(c.statuses))
    if c.types:
        out.append(m.message_type.in_(c.types))
    if c.direction:
        out.append(m.direction == c.direction)
    if c.customers:
        out.append(m.customer_number.in_(c.customers))
    if c.order:
        out.append(or_(m.order_ref == c.order, m.correlation_id == c.order))
    if c.correlation_id:
        out.append(m.correlation_id == c.correlation_id)
    if c.message_id:
        # A union of two index lookups: an OR over the two tables would scan messages.
        own = select(m.id).where(m.message_id == c.message_id)
        sent = select(OutboxRow.message_pk).where(OutboxRow.message_id == c.message_id)
        out.append(m.id.in_(own.union(sent)))
    if c.since is not None:
        out.append(m.received_at >= c.since.astimezone(UTC))
    if c.until is not None:
        out.append(m.received_at < c.until.astimezone(UTC))
    if c.error:
        escaped = c.error.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        out.append(m.last_error.ilike(f"%{escaped}%", escape="\\"))
    if c.patient:
        if patient_ref is None:
            raise ValueError("a patient criterion needs its patient_ref")
        out.append(m.patient_ref == patient_ref)
    if c.originals_only:
        out.append(m.replay_of.is_(None))
    return out


def newest(
    session: Session,
    c: Criteria,
    patient_ref: str | None = None,
    *,
    limit: int,
    before: tuple[datetime, int] | None = None,
) -> list[MessageRow]:
    """Up to `limit` matching rows, newest first; `before` (received_at, id) pages on by keyset: a page
    after the 1000th costs what the first does, where OFFSET would read and drop every row before it."""
    query = select(MessageRow).where(*_where(c, patient_ref))
    if before is not None:
        query = query.where(tuple_(MessageRow.received_at, MessageRow.id) < tuple_(*before))
    return list(session.scalars(query.order_by(MessageRow.received_at.desc(), MessageRow.id.desc()).limit(limit)))


def matching_ids(session: Session, c: Criteria, patient_ref: str | None = None) -> list[int]:
    """The ids of every matching row, oldest first."""
    return list(session.scalars(select(MessageRow.id).where(*_where(c, patient_ref)).order_by(MessageRow.id)))


def get(session: Session, pk: int) -> MessageRow | None:
    return session.get(MessageRow, pk)


def with_message_id(session: Session, message_id: str) -> list[MessageRow]:
    """The rows of a message id: the original and its replays, oldest first."""
    return list(session.scalars(select(MessageRow).where(MessageRow.message_id == message_id).order_by(MessageRow.id)))


def by_ids(session: Session, pks: Iterable[int]) -> dict[int, MessageRow]:
    """The rows of these ids that exist, by id."""
    return {r.id: r for r in session.scalars(select(MessageRow).where(MessageRow.id.in_(list(pks))))}


def in_chunks(session: Session, pks: Sequence[int], chunk: int) -> Iterator[MessageRow]:
    """The rows of these ids in their order, `chunk` per query; each chunk leaves the session once read
    (an export of a million rows must not keep them all)."""
    for start in range(0, len(pks), chunk):
        part = pks[start : start + chunk]
        yield from session.scalars(select(MessageRow).where(MessageRow.id.in_(part)).order_by(MessageRow.id))
        session.expunge_all()


def family(session: Session, original: int) -> list[MessageRow]:
    """An original message and every replay of it, oldest first.

    populate_existing: rows the session has seen and that changed since (a replay earlier in the same batch)
    are read as they are now, not as the session first saw them."""
    query = select(MessageRow).where(or_(MessageRow.id == original, MessageRow.replay_of == original))
    return list(session.scalars(query.order_by(MessageRow.id).execution_options(populate_existing=True)))


def replays_of(session: Session, originals: Iterable[int]) -> list[MessageRow]:
    """Every replay of these originals."""
    return list(session.scalars(select(MessageRow).where(MessageRow.replay_of.in_(list(originals)))))


def of_order(session: Session, customer: str, order_id: str) -> list[MessageRow]:
    """The messages about one order of a customer (its correlation id), oldest first."""
    query = select(MessageRow).where(MessageRow.correlation_id == order_id, MessageRow.customer_number == customer)
    return list(session.scalars(query.order_by(MessageRow.id)))


def opening(session: Session, customer: str, order_id: str) -> MessageRow | None:
    """The stored message that opened an order (the order view's opened_by), its first row with a payload."""
    query = (
        select(MessageRow)
        .join(OrderRow, OrderRow.opened_by == MessageRow.message_id)
        .where(OrderRow.customer_number == customer, OrderRow.order_id == order_id, MessageRow.payload.is_not(None))
        .order_by(MessageRow.id)
        .limit(1)
    )
    return session.scalars(query).first()


@dataclass(frozen=True)
class StepRow:
    """One processing step of a stored message, from its row (messages.steps) or from `events`."""

    message_pk: int
    stage: str
    outcome: str
    detail: str | None
    at: datetime
    duration_ms: float | None


def steps(session: Session, pks: Iterable[int]) -> list[StepRow]:
    """The processing steps of these messages, in the order they happened: each message's own (written with
    its row since migration 0010) and those taken on it later (rows of `events`, as all were before)."""
    wanted = list(pks)
    found = []
    for pk, own in session.execute(select(MessageRow.id, MessageRow.steps).where(MessageRow.id.in_(wanted))):
        for s in own or ():
            found.append(StepRow(pk, s["stage"], s["outcome"], s.get("detail"), _utc(s["at"]), s.get("ms")))
    later = select(EventRow).where(EventRow.message_pk.in_(wanted)).order_by(EventRow.id)
    for e in session.scalars(later):
        found.append(StepRow(e.message_pk, e.stage, e.outcome, e.detail, _utc(e.at), e.duration_ms))
    return sorted(found, key=lambda step: step.at)  # stable: steps of one moment keep the order they were written


def _utc(at: datetime | str) -> datetime:
    """A step's time, timezone-aware (SQLite hands back naive UTC; the JSON list holds ISO text)."""
    value = datetime.fromisoformat(at) if isinstance(at, str) else at
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def published(session: Session, pks: Iterable[int]) -> list[OutboxRow]:
    """What these messages sent (their outbox rows), in the order it was written."""
    query = select(OutboxRow).where(OutboxRow.message_pk.in_(list(pks))).order_by(OutboxRow.id)
    return list(session.scalars(query))


def add_steps(session: Session, stage: str, details: Mapping[int, str], at: datetime) -> None:
    """One step with outcome ok per message (id -> detail): what an operator's command did to it."""
    if details:
        rows = [{"message_pk": pk, "stage": stage, "outcome": "ok", "detail": d, "at": at} for pk, d in details.items()]
        session.execute(insert(EVENTS), rows)
