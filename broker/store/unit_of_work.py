"""The unit of work: one transaction per batch, committed once, with the few queries the pipeline needs."""

from __future__ import annotations

import hashlib
import hmac
import threading
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from re import Pattern
from typing import Any

from sqlalchemy import Engine, Table, bindparam, insert, select, update
from sqlalchemy.orm import Session, sessionmaker

from broker.contract import identifiers
from broker.envelope import Outgoing
from broker.model.types import IdKind
from broker.store import driver, messages
from broker.store.articles import Articles
from broker.store.buffer_stock import BufferStock
from broker.store.error_rules import stored_rule
from broker.store.invoices import Invoices
from broker.store.orders import Orders
from broker.store.outbox import OutboxMarks
from broker.store.prescriber_register import PrescriberRegister
from broker.store.tables import EVENTS, MESSAGES, OUTBOX, MessageRow, OutboxRow, StoreKeyRow

# A message that is settled: nothing more will happen to it unless an operator replays it.
UNRESOLVED = ("rejected", "parked")

_keys: weakref.WeakKeyDictionary[Engine, bytes] = weakref.WeakKeyDictionary()
_keys_lock = threading.Lock()


# The batch's de-duplication read, built once (building it for every batch cost about a tenth of a small batch);
# the two columns it needs, not ORM rows with their payloads.
_ORIGINALS = select(MESSAGES.c.id, MESSAGES.c.message_id).where(
    MESSAGES.c.direction == bindparam("direction"),
    MESSAGES.c.message_id.in_(bindparam("ids", expanding=True)),
    MESSAGES.c.replay_of.is_(None),
)
_INSERT_EVENTS = insert(EVENTS)
_INSERTS = {table.name: insert(table) for table in (MESSAGES, OUTBOX)}  # rows given their ids (driver.reserve_ids)


def _originals_of(count: int) -> Any:
    """The de-duplication read for `count` message ids, each a parameter of its own (driver.py)."""
    return select(MESSAGES.c.id, MESSAGES.c.message_id).where(
        MESSAGES.c.direction == bindparam("direction"),
        MESSAGES.c.message_id.in_([bindparam(f"id{i}") for i in range(count)]),
        MESSAGES.c.replay_of.is_(None),
    )


def now() -> datetime:
    return datetime.now(UTC)


class StoreNotMigrated(RuntimeError):
    """The store lacks a table or row that a migration makes: run `hmc-broker db upgrade`."""


def store_key(session: Session) -> bytes:
    """This store's key for patient_ref, read once per engine (it never changes once made)."""
    engine = session.get_bind().engine
    key = _keys.get(engine)
    if key is None:
        with _keys_lock:
            key = session.scalar(select(StoreKeyRow.value).where(StoreKeyRow.name == "patient_ref"))
            if key is None:
                raise StoreNotMigrated("the store has no patient_ref key: run `hmc-broker db upgrade`")
            _keys[engine] = key
    return key


def patient_ref(key: bytes, patient_id: str, reserve_patterns: Sequence[Pattern[str]]) -> str:
    """A keyed, non-reversible token for a patient identifier: the same person gives the same token.

    The identifier is normalised by the identifier rules first (a personnummer in any of its forms
    gives one value), and HMAC rather than a plain hash: there are few enough personnummer to hash
    them all. 64 bits of the digest keep chance collisions negligible on a store of millions.
    """
    try:
        value = identifiers.check(IdKind.PATIENT, patient_id, reserve_patterns=reserve_patterns)
    except identifiers.IdentifierError:
        value = patient_id.strip().upper()
    return f"[patient-ref:{hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]}]"


@dataclass(slots=True, eq=False)
class NewMessage:
    """A message row made in this unit: inserted with the batch's others at flush(), in one multi-row INSERT
    ... RETURNING id. Not an ORM object: the ORM's bookkeeping per object (identity map, attribute events,
    its flush) cost more than the rest of the store's work per message."""

    message_id: str
    direction: str
    message_type: str | None
    customer_number: str | None
    correlation_id: str | None
    order_ref: str | None
    patient_ref: str | None
    status: str
    payload: bytes | None
    properties: dict[str, Any]
    replay_of: int | None
    received_at: datetime
    updated_at: datetime
    attempts: int = 1
    last_error: str | None = None
    id: int = 0  # the row's id, once inserted
    written: tuple[Any, ...] | None = None  # what the changeable columns held when last written

    def changeable(self) -> tuple[Any, ...]:
        # A copy of properties: a change made in place must still compare unequal to what was written.
        return (self.status, self.last_error, self.updated_at, dict(self.properties), self.attempts)

    def insert_values(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "direction": self.direction,
            "message_type": self.message_type,
            "customer_number": self.customer_number,
            "correlation_id": self.correlation_id,
            "order_ref": self.order_ref,
            "patient_ref": self.patient_ref,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "error_rule": stored_rule(self.last_error),
            "received_at": self.received_at,
            "updated_at": self.updated_at,
            "payload": self.payload,
            "properties": self.properties,
            "replay_of": self.replay_of,
        }


StoredMessage = NewMessage | MessageRow  # a row made in this unit, or one read from the store


@dataclass(slots=True, frozen=True)
class Original:
    """A message stored before, as de-duplication needs it: its row id (a repeat's step goes there), its id."""

    id: int
    message_id: str


Stepped = StoredMessage | Original  # what a processing step can be recorded on


@dataclass(slots=True)
class Step:
    """One processing step of a message, kept in memory and written with the rest of the batch's steps.

    Not an ORM object: a batch has three or more per message, and the ORM's bookkeeping per object cost
    more than the step itself. flush() writes the steps of a message it inserts into that message's row
    (messages.steps), and any other step (on a message stored before) as a row of `events`.
    """

    message: Stepped
    stage: str
    outcome: str
    detail: str | None
    at: datetime
    duration_ms: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "outcome": self.outcome,
            "detail": self.detail,
            "at": self.at.isoformat(),
            "ms": self.duration_ms,
        }

    @property
    def message_pk(self) -> int:
        return self.message.id


@dataclass(slots=True)
class Queued:
    """An outgoing message of this unit, written to the outbox with the batch's others at flush()."""

    message: StoredMessage
    out: Outgoing
    created_at: datetime


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session], relay_grace_s: float = 30.0) -> None:
        self._factory = session_factory
        # The worker that writes a row publishes it right after the commit; the relay of any worker takes
        # it only after this grace, when that publish has failed or its worker died.
        self._grace = timedelta(seconds=relay_grace_s)
        self.outbox: list[tuple[int, Outgoing]] = []  # outbox rows written in this unit, to publish after commit
        self._queued: list[Queued] = []  # outgoing messages not yet in the outbox table
        self.messages: list[NewMessage] = []  # messages stored in this unit, for metrics and logs after commit
        self.events: list[Step] = []  # their processing steps, for the wire tap on hmc.events
        self._written = 0  # how many of self.events are stored (in their message's row or in `events`)
        self._in_rows: set[int] = set()  # the messages (by id()) whose steps flush() wrote into their rows
        self.prescribers = PrescriberRegister()  # the batch's sightings, written at flush
        self._reserved: dict[Table, list[int]] = {}  # ids drawn for the rows of a one-message commit (PostgreSQL)

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        self.orders = Orders(self.session)
        self.articles = Articles(self.session)
        self.buffer_stock = BufferStock(self.session)
        self.invoices = Invoices(self.session)
        self.publish_marks = OutboxMarks(self.session)
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.rollback()  # no-op after commit; undoes a failed batch
        self.session.close()

    def commit(self) -> None:
        """Write what is pending and commit. On PostgreSQL the small writes and the COMMIT go as one message, in one
        round trip (their ids drawn first, in one more; broker/store/driver.py says why not psycopg's pipeline
        mode), unless ORM objects are pending: their flush waits for its own ids."""
        session = self.session
        if driver.holds(session) and not (session.new or session.dirty or session.deleted):
            self._reserved = driver.reserve_ids(
                session, {MESSAGES: sum(1 for row in self.messages if not row.id), OUTBOX: len(self._queued)}
            )
            with driver.hold(session) as commit:
                self.flush()
                commit()
            self._reserved = {}
        else:
            self.flush()
        session.commit()

    # ---------------------------------------------------------------- messages

    def originals(self, direction: str, message_ids: Iterable[str]) -> dict[str, Original]:
        ids = list(set(message_ids))
        if not ids:
            return {}
        if len(ids) > driver.SMALL:
            rows: Iterable[Sequence[Any]] = self.session.execute(_ORIGINALS, {"direction": direction, "ids": ids})
        else:
            few = driver.compiled(self.session, ("originals", len(ids)), lambda: _originals_of(len(ids)))
            rows = driver.fetch(self.session, few, {"direction": direction, **{f"id{i}": v for i, v in enumerate(ids)}})
        return {message_id: Original(pk, message_id) for pk, message_id in rows}

    def add_message(self, **values: Any) -> NewMessage:
        """A new message row. It is inserted with the rest of the batch at commit (flush() to get its id now)."""
        stamp = now()
        row = NewMessage(received_at=stamp, updated_at=stamp, **values)
        self.messages.append(row)
        return row

    def flush(self) -> None:
        """Insert what is pending now: at commit, or for the rare step that needs a new row's id (replays)."""
        self.orders.write()  # first: an order another worker opened meanwhile fails here, and the batch is retried
        self._write_messages()
        driver.release(self.session)  # the ORM's statements run after what is held (driver.hold)
        self.session.flush()
        self.prescribers.write(self.session)
        if self._queued:
            self._write_outbox(self._queued)
            self._queued = []
        later = [s for s in self.events[self._written :] if id(s.message) not in self._in_rows]
        self._written = len(self.events)
        if later:  # steps on messages stored before (a redelivery, a replay's original): rows of their own
            driver.insert(
                self.session,
                _INSERT_EVENTS,
                [
                    {
                        "message_pk": s.message.id,
                        "stage": s.stage,
                        "outcome": s.outcome,
                        "detail": s.detail,
                        "at": s.at,
                        "duration_ms": s.duration_ms,
                    }
                    for s in later
                ],
            )
        self._in_rows.clear()

    def _write_messages(self) -> None:
        """Insert this unit's new message rows (ids back in row order); update those written earlier and
        changed since (a replay's, which is flushed early for its id)."""
        new = [row for row in self.messages if not row.id]
        if new:
            # A new row carries the steps taken on it so far: one row per message, not one plus three.
            own: dict[int, list[dict[str, Any]]] = {id(row): [] for row in new}
            for step in self.events[self._written :]:
                if (mine := own.get(id(step.message))) is not None:
                    mine.append(step.as_json())
            self._in_rows = set(own)
            values = [{**row.insert_values(), "steps": own[id(row)]} for row in new]
            ids = self._insert_ids(MESSAGES, values)
            for row, pk in zip(new, ids, strict=True):
                row.id = pk
                row.written = row.changeable()
            new_ids = {id(row) for row in new}
        else:
            new_ids = set()
        for row in self.messages:
            if id(row) not in new_ids and row.written != (current := row.changeable()):
                status, last_error, updated_at, properties, attempts = current
                driver.release(self.session)
                self.session.execute(
                    update(MESSAGES)
                    .where(MESSAGES.c.id == row.id)
                    .values(
                        status=status,
                        last_error=last_error,
                        error_rule=stored_rule(last_error),
                        updated_at=updated_at,
                        properties=properties,
                        attempts=attempts,
                    )
                )
                row.written = current

    def payload_of(self, message_id: str) -> bytes | None:
        """The payload an original message (not a replay) was stored with: this unit's own, else the store's.
        Read only for an order opened again under another message id (rare): one query then."""
        for row in self.messages:
            if row.message_id == message_id and row.replay_of is None:
                return row.payload
        found = next((r for r in messages.with_message_id(self.session, message_id) if r.replay_of is None), None)
        return found.payload if found is not None else None

    def patient_ref(self, patient_id: str, reserve_patterns: Sequence[Pattern[str]]) -> str:
        return patient_ref(store_key(self.session), patient_id, reserve_patterns)

    def lock(self, pk: int) -> MessageRow | None:
        """A message row, locked until commit (PostgreSQL): replays of one original take turns."""
        query = select(MessageRow).where(MessageRow.id == pk).with_for_update()
        return self.session.scalars(query.execution_options(populate_existing=True)).first()

    def family(self, original: int) -> list[MessageRow]:
        """An original message and every replay of it, oldest first."""
        return messages.family(self.session, original)

    def outgoing_state(self, message_ids: Iterable[str]) -> str | None:
        """How far an outgoing message (under any of `message_ids`) got: sent, pending, parked or None."""
        ids = list(message_ids)
        self.flush()  # outgoing messages of this unit count too
        states = set(self.session.scalars(select(OutboxRow.status).where(OutboxRow.message_id.in_(ids))))
        return next((s for s in ("sent", "pending", "parked") if s in states), None)

    def resolve(self, original: int, by: StoredMessage) -> None:
        """A replay went through: its original and earlier failed replays are settled by it."""
        for row in self.family(original):
            if row.id != by.id and row.status in UNRESOLVED:
                self.event(row, "replay", "resolved", f"was {row.status}; replayed as #{by.id}")
                self.set_status(row, "replayed")

    def set_status(self, row: StoredMessage, status: str, error: str | None = None) -> None:
        row.status = status
        row.updated_at = now()
        if error is not None:
            row.last_error = error

    def event(
        self, row: Stepped, stage: str, outcome: str, detail: str | None = None, duration_ms: float | None = None
    ) -> None:
        self.events.append(Step(row, stage, outcome, detail, now(), duration_ms))

    # ---------------------------------------------------------------- outbox

    def add_outgoing(self, row: StoredMessage, out: Outgoing) -> None:
        """An outgoing message of `row`: written to the outbox at flush, published by the runtime after commit."""
        stamp = now()
        if out.timestamp is None:
            out = replace(out, timestamp=int(stamp.timestamp()))  # as the relay sets it from created_at
        self._queued.append(Queued(row, out, stamp))

    def _write_outbox(self, queued: list[Queued]) -> None:
        rows = [
            {
                "message_pk": q.message.id,
                "message_id": q.out.message_id,
                "exchange": q.out.exchange.value,
                "routing_key": q.out.routing_key,
                "message_type": q.out.message_type,
                "correlation_id": q.out.correlation_id,
                "body": q.out.body,
                "headers": {"schema_version": q.out.schema_version, **q.out.headers},
                "status": "pending",
                "attempts": 0,
                "created_at": q.created_at,
                "next_attempt_at": q.created_at + self._grace,
            }
            for q in queued
        ]
        ids = self._insert_ids(OUTBOX, rows)  # ids in the order of the rows
        self.outbox.extend(zip(ids, (q.out for q in queued), strict=True))

    def _insert_ids(self, table: Table, rows: list[dict[str, Any]]) -> list[int]:
        """Insert rows and give their ids, in row order: the ids reserved for a one-message commit, else RETURNING."""
        reserved = self._reserved.get(table)
        if reserved is None or len(reserved) < len(rows):
            return driver.insert_ids(self.session, table, rows)
        ids, self._reserved[table] = reserved[: len(rows)], reserved[len(rows) :]
        driver.insert(
            self.session, _INSERTS[table.name], [{**row, "id": pk} for row, pk in zip(rows, ids, strict=True)]
        )
        return ids
