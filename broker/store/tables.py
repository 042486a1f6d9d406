"""Tables of the message store (SQLAlchemy 2). Migrations in migrations/ create exactly these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, ORMExecuteState, Session, mapped_column

from broker.store.error_rules import stored_rule

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")
Stamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[Any]: JSON, datetime: Stamp}


class MessageRow(Base):
    """Every message that entered, valid or not, with its raw payload and where it stands."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))  # inbound (from a customer) / outbound (from SESAM2)
    message_type: Mapped[str | None] = mapped_column(String(40))
    customer_number: Mapped[str | None] = mapped_column(String(16))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    order_ref: Mapped[str | None] = mapped_column(String(64))  # the customer's order, work-order, pickup... id
    # Keyed hash (the store's own key, see unit_of_work.patient_ref), never the identifier; None once pruned.
    patient_ref: Mapped[str | None] = mapped_column(String(40))
    # received, rejected, forwarded, delivered, answered, parked, repeat (an order's content again under a new
    # message id: nothing sent); replays: skipped (all of it had gone out
    # already); resolved by an operator: replayed (a later replay went through), resolved (closed by hand).
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The rule or error class last_error begins with (broker/store/error_rules.py), written with it: what
    # the Failures page groups by, from an index alone (ix_messages_failures; broker/store/failures.py).
    error_rule: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)  # None once pruned
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    replay_of: Mapped[int | None] = mapped_column(Id, ForeignKey("messages.id"))
    # The steps of the transaction that stored it ({stage, outcome, detail, at, ms}); later steps are rows of
    # `events`. None on rows stored before migration 0010 (their steps are all in `events`). Read both through
    # store/messages.steps().
    steps: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    __table_args__ = (
        # The broker de-duplicates inbound ids; a replay is a new row linked to its original.
        # message_id first: a batch's ids are then the index condition whatever the planner's statistics
        # (with direction first, two values, a store not yet analysed was filtered row by row).
        Index(
            "ux_messages_original",
            "message_id",
            "direction",
            unique=True,
            sqlite_where=replay_of.is_(None),
            postgresql_where=replay_of.is_(None),
        ),
        Index("ix_messages_status_received", "status", "received_at"),
        Index("ix_messages_type_received", "message_type", "received_at"),
        Index("ix_messages_customer_received", "customer_number", "received_at"),
        Index("ix_messages_correlation", "correlation_id"),
        # Partial where most rows hold NULL: every insert and status change would add an entry for it.
        Index(
            "ix_messages_patient",
            "patient_ref",
            sqlite_where=patient_ref.is_not(None),
            postgresql_where=patient_ref.is_not(None),
        ),
        Index("ix_messages_received", "received_at"),
        Index("ix_messages_order_ref", "order_ref"),
        Index("ix_messages_message_id", "message_id"),  # replays too: ux_messages_original holds originals only
        Index(
            "ix_messages_replay_of",
            "replay_of",
            sqlite_where=replay_of.is_not(None),
            postgresql_where=replay_of.is_not(None),
        ),
        # Unresolved failures by group, for the Failures page: the failed rows only, and every column the
        # page counts by, so that PostgreSQL answers it by an index-only scan (broker/store/failures.py).
        Index(
            "ix_messages_failures",
            "status",
            "error_rule",
            "message_type",
            "customer_number",
            "received_at",
            "id",
            sqlite_where=status.in_(("parked", "rejected")),
            postgresql_where=status.in_(("parked", "rejected")),
        ),
        # Error-text search (ILIKE '%...%') on a large store: a trigram index, PostgreSQL only (pg_trgm).
        Index(
            "ix_messages_error_trgm",
            "last_error",
            postgresql_using="gin",
            postgresql_ops={"last_error": "gin_trgm_ops"},
            postgresql_where=last_error.is_not(None),
        ).ddl_if(dialect="postgresql"),
    )


@event.listens_for(MessageRow.last_error, "set")
def _rule_with_error(target: MessageRow, value: str | None, _old: Any, _initiator: Any) -> None:
    """An error set on a row through the ORM sets its rule too (the unit of work's statements and the bulk
    loader write both columns themselves)."""
    target.error_rule = stored_rule(value)


class EventRow(Base):
    """One processing step of one message: the history an operator reads."""

    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    message_pk: Mapped[int] = mapped_column(Id, ForeignKey("messages.id"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]
    duration_ms: Mapped[float | None] = mapped_column(Float)


class OutboxRow(Base):
    """A message to publish, written in the same transaction as the state change that caused it."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    message_pk: Mapped[int] = mapped_column(Id, ForeignKey("messages.id"), index=True)
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    exchange: Mapped[str] = mapped_column(String(32))
    routing_key: Mapped[str] = mapped_column(String(255))
    message_type: Mapped[str] = mapped_column(String(40))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending / sent / parked
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]

    __table_args__ = (Index("ix_outbox_pending", "status", "next_attempt_at"),)


class OrderRow(Base):
    """The order view: what the broker knows of an order (or work order, pickup, report)."""

    __tablename__ = "orders"
    customer_number: Mapped[str] = mapped_column(String(16), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    sesam2_order_number: Mapped[str | None] = mapped_column(String(16))
    lines: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # line number -> line state
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # The message id that opened it: the same order id under another message id is a repeat when its business
    # content is the same, else refused (order.duplicate). The primary key makes the order unique, also between
    # workers. None on orders opened before migration 0005.
    opened_by: Mapped[str | None] = mapped_column(String(64))


class BufferStockRow(Base):
    """What a buffer store holds of one article it keeps under automatic replenishment.

    Rows exist for the articles configured for a store (Customer.buffer_stores); safety level and
    refill quantity are copied from the configuration whenever the row is touched, so the row shows
    what was applied. on_hand is None until the first BufferStockReport counted the article.
    """

    __tablename__ = "buffer_stock"
    customer_number: Mapped[str] = mapped_column(String(16), primary_key=True)
    buffer_store_id: Mapped[str] = mapped_column(String(35), primary_key=True)
    article_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    safety_level: Mapped[int] = mapped_column(Integer)
    refill_quantity: Mapped[int] = mapped_column(Integer)
    on_hand: Mapped[int | None] = mapped_column(Integer)  # may go below 0: the count was off (an event says so)
    counted_at: Mapped[datetime | None]  # the last BufferStockReport's count
    updated_at: Mapped[datetime]


class BufferMovementRow(Base):
    """The stock ledger: every count, withdrawal and delivery applied to a buffer stock row.

    Unique per message and article, so a message's effect on stock applies once: a redelivery, a
    retried batch or an operator's replay of the same message id cannot count a withdrawal twice.
    """

    __tablename__ = "buffer_movements"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    customer_number: Mapped[str] = mapped_column(String(16))
    buffer_store_id: Mapped[str] = mapped_column(String(35))
    article_number: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(12))  # count / withdrawal / delivery
    quantity: Mapped[int] = mapped_column(Integer)  # count: the level counted; otherwise the change (+/-)
    on_hand_after: Mapped[int | None] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]

    __table_args__ = (
        Index("ux_buffer_movements_message", "kind", "message_id", "article_number", unique=True),
        Index("ix_buffer_movements_stock", "customer_number", "buffer_store_id", "article_number", "at"),
    )


class ReplenishmentRow(Base):
    """An order the broker generated because a buffer store's stock fell under an article's safety level.

    At most one open per store and article, enforced by the database (ux_replenishments_open), not only
    by the code: concurrent workers cannot both open one. A DeliveryNote closes it (delivered), an
    OrderCancelled for the whole order too (cancelled); the next under-run then opens a new one.
    """

    __tablename__ = "replenishments"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    customer_number: Mapped[str] = mapped_column(String(16))
    buffer_store_id: Mapped[str] = mapped_column(String(35))
    article_number: Mapped[str] = mapped_column(String(20))
    order_id: Mapped[str] = mapped_column(String(64), unique=True)  # in the order view, as the customer's own
    message_id: Mapped[str] = mapped_column(String(64))  # of the CustomerOrder sent to SESAM2
    quantity: Mapped[int] = mapped_column(Integer)
    on_hand_at_order: Mapped[int] = mapped_column(Integer)
    safety_level: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))  # open / delivered / cancelled
    caused_by: Mapped[str] = mapped_column(String(64))  # the message id whose stock change under-ran
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(64))  # the DeliveryNote's or OrderCancelled's id

    __table_args__ = (
        Index(
            "ux_replenishments_open",
            "customer_number",
            "buffer_store_id",
            "article_number",
            unique=True,
            sqlite_where=status == "open",
            postgresql_where=status == "open",
        ),
    )


class InvoiceRow(Base):
    """SESAM2's monthly invoice data (fakturaunderlag) per customer, kept for export.

    Its own table, not only the message payload: payloads are pruned after the retention period, invoice
    data must stay exportable. The lines carry no patient identifiers (InvoiceLine has none). Amounts
    are decimal text, exact on both stores (lines as JSON with decimal strings).
    """

    __tablename__ = "invoices"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    customer_number: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    invoice_number: Mapped[str] = mapped_column(String(35))
    total_amount: Mapped[str] = mapped_column(String(20))  # decimal text: SQLite has no exact decimal type
    lines: Mapped[list[Any]] = mapped_column(JSON)
    message_pk: Mapped[int] = mapped_column(Id, ForeignKey("messages.id"))
    message_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]

    __table_args__ = (Index("ix_invoices_customer_period", "customer_number", "period", "received_at"),)


class PrescriberRow(Base):
    """The prescriber register: who was seen ordering for a customer, in which role and unit, and when.

    One row per customer, HSA-id, role (prescriber, orderer, reporter) and sending unit ('' when the
    message named none); upserted once per batch by broker/handlers/prescribers.py. A prescriber's
    förskrivarkod and profession (customer dialect 1.1, migration 0011) are those the latest message that
    stated them gave (`coded_at`: that message's SentAt); none for a person seen only in 1.0 messages.
    """

    __tablename__ = "prescribers"
    customer_number: Mapped[str] = mapped_column(String(16), primary_key=True)
    hsa_id: Mapped[str] = mapped_column(String(31), primary_key=True)
    role: Mapped[str] = mapped_column(String(12), primary_key=True)
    unit_hsa_id: Mapped[str] = mapped_column(String(31), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]
    message_count: Mapped[int] = mapped_column(Integer)
    prescriber_code: Mapped[str | None] = mapped_column(String(12))
    profession: Mapped[str | None] = mapped_column(String(32))
    coded_at: Mapped[datetime | None]


class AuditRow(Base):
    """Append-only record of what people did: replays, edits, reveals, exports, patient searches.

    Nothing updates or deletes it: the ORM refuses (below) and the database refuses (triggers of
    migration 0002).
    """

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))  # the operator's user id (--operator)
    os_user: Mapped[str | None] = mapped_column(String(100))  # who ran the command on the machine
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AppendOnlyError(RuntimeError):
    """Someone tried to change or remove an audit row."""


@event.listens_for(AuditRow, "before_update")
@event.listens_for(AuditRow, "before_delete")
def _refuse_audit_change(*_args: object) -> None:
    raise AppendOnlyError("the audit table is append-only")


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_audit_change(state: ORMExecuteState) -> None:
    # Bulk UPDATE/DELETE statements bypass the mapper events above.
    if (state.is_update or state.is_delete) and any(m.class_ is AuditRow for m in state.all_mappers):
        raise AppendOnlyError("the audit table is append-only")


class StoreKeyRow(Base):
    """Secrets of this store, made once by migration 0002: the key of patient_ref.

    Kept in the store (not HMC_PII_KEY, which masks log lines) so that every process that reads this
    store computes the same patient_ref without any configuration.
    """

    __tablename__ = "store_keys"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class ReplayJobRow(Base):
    """One replay command: a snapshot of the ids it replays, so that it can be interrupted and resumed."""

    __tablename__ = "replay_jobs"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    force: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16))  # running / interrupted / done
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the filter, the audit row


class ReplayItemRow(Base):
    """One message of a replay job, in snapshot order; outcome is None until it was replayed."""

    __tablename__ = "replay_items"
    job_id: Mapped[int] = mapped_column(Id, ForeignKey("replay_jobs.id"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_pk: Mapped[int] = mapped_column(Id, ForeignKey("messages.id"))
    replay_pk: Mapped[int | None] = mapped_column(Id)
    outcome: Mapped[str | None] = mapped_column(String(16))


class AccountRow(Base):
    """Who may use the operator console (console/): a person with a password, or a service with a token.

    Only hashes are kept (argon2 for passwords, SHA-256 for the random service tokens). An account unused
    for a year is disabled at its next login (the regions' access routine); nothing is ever deleted, so
    audit rows keep naming a known account.
    """

    __tablename__ = "accounts"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # person / service
    password_hash: Mapped[str | None] = mapped_column(String(200))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)  # viewer, operator, privacy, admin, invoice:1001
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)  # since the last success: login throttling
    locked_until: Mapped[datetime | None]


class ArticleRow(Base):
    """The article register (artikelregister): imported from an export, kept current by SESAM2's
    ArticleRegisterUpdate in the transaction that routes it. `article` holds the model's fields as text."""

    __tablename__ = "articles"
    article_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # active / withdrawn
    article: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))  # "update <message id>" or "import <file>"


class RegisterVersionRow(Base):
    """A counter per register, raised by every change: a worker reloads its cached register when it moved."""

    __tablename__ = "register_versions"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class OutageForecastRow(Base):
    """An operator's forecast for a partner's outage ("SESAM2 back by 10:00"): while it has not passed, the
    reserve routine is held back (Skåne's routine: four hours and still no forecast)."""

    __tablename__ = "outage_forecasts"
    partner: Mapped[str] = mapped_column(String(40), primary_key=True)
    back_by: Mapped[datetime]
    recorded_at: Mapped[datetime]
    operator: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)


# The tables as Core sees them, for the hot path's statements that need none of the ORM's bookkeeping.
MESSAGES = cast(Table, MessageRow.__table__)
EVENTS = cast(Table, EventRow.__table__)
OUTBOX = cast(Table, OutboxRow.__table__)
ORDERS = cast(Table, OrderRow.__table__)
