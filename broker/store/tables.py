"""Tables of the message store (SQLAlchemy 2). Migrations in migrations/ create exactly these."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
Id = BigInteger().with_variant(Integer(), "sqlite")
Stamp = DateTime(timezone=True)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, datetime: Stamp}


class MessageRow(Base):
    """Every message that entered, valid or not, with its raw payload and where it stands."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64))
    direction: Mapped[str] = mapped_column(String(8))  # inbound (from a customer) / outbound (from SESAM2)
    message_type: Mapped[str | None] = mapped_column(String(40))
    customer_number: Mapped[str | None] = mapped_column(String(16))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    patient_ref: Mapped[str | None] = mapped_column(String(40))  # keyed hash, never the identifier
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)  # None once pruned
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    replay_of: Mapped[int | None] = mapped_column(Id, ForeignKey("messages.id"))

    __table_args__ = (
        # The broker de-duplicates inbound ids; a replay is a new row linked to its original.
        Index(
            "ux_messages_original",
            "direction",
            "message_id",
            unique=True,
            sqlite_where=replay_of.is_(None),
            postgresql_where=replay_of.is_(None),
        ),
        Index("ix_messages_status_received", "status", "received_at"),
        Index("ix_messages_type_received", "message_type", "received_at"),
        Index("ix_messages_customer_received", "customer_number", "received_at"),
        Index("ix_messages_correlation", "correlation_id"),
        Index("ix_messages_patient", "patient_ref"),
        Index("ix_messages_received", "received_at"),
    )


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


class AuditRow(Base):
    """Append-only record of what people did: replays, edits, reveals, exports, patient searches."""

    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
