"""Read-only questions operations ask of the store (the worker's watch, `hmc-broker status`, the demo's account)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from broker.envelope import Exchange
from broker.store.tables import MessageRow, OutboxRow


def ping(session: Session) -> None:
    """Raises when the store cannot be reached (readiness)."""
    session.execute(select(1))


@dataclass(frozen=True)
class Gauges:
    backlog: int  # outbox rows not yet confirmed
    parked: int
    rejected_last_hour: int
    replays_last_hour: int  # operators' replays: counted from the store, so every worker exports them


def gauges(session: Session) -> Gauges:
    """What the worker exports as gauges: cheap indexed counts."""
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    return Gauges(
        backlog=session.scalar(select(func.count()).where(OutboxRow.status == "pending")) or 0,
        parked=session.scalar(select(func.count()).where(MessageRow.status == "parked")) or 0,
        rejected_last_hour=session.scalar(
            select(func.count()).where(MessageRow.status == "rejected", MessageRow.received_at >= hour_ago)
        )
        or 0,
        replays_last_hour=session.scalar(
            select(func.count()).where(MessageRow.replay_of.is_not(None), MessageRow.received_at >= hour_ago)
        )
        or 0,
    )


def oldest_waiting_age(session: Session, partner: str, waiting: int) -> float:
    """Age of the oldest of `waiting` messages in a partner's queue: the broker sent them all, in order,
    so the oldest is the waiting-th newest sent there (no management plugin needed)."""
    if waiting <= 0:
        return 0.0
    exchange = Exchange.SESAM2_OUT if partner == "sesam2" else Exchange.CUSTOMER_OUT
    query = select(OutboxRow.sent_at).where(OutboxRow.exchange == exchange.value, OutboxRow.status == "sent")
    if partner != "sesam2":
        query = query.where(OutboxRow.routing_key.like(partner.removeprefix("customer-") + ".%"))
    sent_at = session.scalar(query.order_by(OutboxRow.sent_at.desc()).offset(waiting - 1).limit(1))
    if sent_at is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - sent_at.replace(tzinfo=sent_at.tzinfo or UTC)).total_seconds())


@dataclass(frozen=True)
class TypeCount:
    message_type: str
    direction: str
    status: str
    count: int


def last_hour(session: Session) -> list[TypeCount]:
    return counts_since(session, datetime.now(UTC) - timedelta(hours=1))


def counts_since(session: Session, since: datetime) -> list[TypeCount]:
    """Messages received since `since`, counted by type, direction and status."""
    rows = session.execute(
        select(MessageRow.message_type, MessageRow.direction, MessageRow.status, func.count())
        .where(MessageRow.received_at >= since)
        .group_by(MessageRow.message_type, MessageRow.direction, MessageRow.status)
        .order_by(MessageRow.direction, MessageRow.message_type)
    )
    return [TypeCount(t or "unknown", d, s, n) for t, d, s, n in rows]


def failed(session: Session) -> list[tuple[str, str, str | None]]:
    """Message id, status and last error of every parked or rejected message."""
    query = select(MessageRow.message_id, MessageRow.status, MessageRow.last_error).where(
        MessageRow.status.in_(("parked", "rejected"))
    )
    return [(r.message_id, r.status, r.last_error) for r in session.execute(query)]


def backlog(session: Session) -> dict[str, int]:
    def count(query: Select[Any]) -> int:
        return int(session.scalar(query) or 0)

    return {
        "outbox_pending": count(select(func.count()).where(OutboxRow.status == "pending")),
        "outbox_parked": count(select(func.count()).where(OutboxRow.status == "parked")),
        "parked": count(select(func.count()).where(MessageRow.status == "parked")),
        "rejected_last_hour": count(
            select(func.count()).where(
                MessageRow.status == "rejected", MessageRow.received_at >= datetime.now(UTC) - timedelta(hours=1)
            )
        ),
    }


def received_per_slot(session: Session, since: datetime, slot: timedelta, slots: int) -> list[dict[str, int]]:
    """Per time slot from `since`: messages received, by status. One indexed range count per slot and
    status group, the same statement on SQLite and PostgreSQL (no date_trunc)."""
    out: list[dict[str, int]] = []
    for i in range(slots):
        start, end = since + i * slot, since + (i + 1) * slot
        rows = session.execute(
            select(MessageRow.status, func.count())
            .where(MessageRow.received_at >= start, MessageRow.received_at < end)
            .group_by(MessageRow.status)
        )
        out.append({status: n for status, n in rows})
    return out
