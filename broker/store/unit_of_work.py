"""The unit of work: one transaction per batch, committed once, with the few queries the pipeline needs."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from broker.envelope import Outgoing
from broker.store.tables import EventRow, MessageRow, OrderRow, OutboxRow


def now() -> datetime:
    return datetime.now(UTC)


class UnitOfWork:
    def __init__(self, session_factory: sessionmaker[Session], relay_grace_s: float = 30.0) -> None:
        self._factory = session_factory
        # The worker that writes a row publishes it right after the commit; the relay of any worker takes
        # it only after this grace, when that publish has failed or its worker died.
        self._grace = timedelta(seconds=relay_grace_s)
        self.outbox: list[OutboxRow] = []  # rows written in this unit, to publish right after commit
        self.messages: list[MessageRow] = []  # messages stored in this unit, for metrics and logs after commit
        self.events: list[EventRow] = []  # their processing steps, for the wire tap on hmc.events

    def __enter__(self) -> UnitOfWork:
        self.session = self._factory()
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.rollback()  # no-op after commit; undoes a failed batch
        self.session.close()

    def commit(self) -> None:
        self.session.commit()

    # ---------------------------------------------------------------- messages

    def originals(self, direction: str, message_ids: Iterable[str]) -> dict[str, MessageRow]:
        ids = list(set(message_ids))
        if not ids:
            return {}
        rows = self.session.scalars(
            select(MessageRow).where(
                MessageRow.direction == direction, MessageRow.message_id.in_(ids), MessageRow.replay_of.is_(None)
            )
        )
        return {row.message_id: row for row in rows}

    def add_message(self, **values: Any) -> MessageRow:
        stamp = now()
        row = MessageRow(received_at=stamp, updated_at=stamp, attempts=1, **values)
        self.session.add(row)
        self.messages.append(row)
        self.session.flush()  # the id links events and outbox rows
        return row

    def set_status(self, row: MessageRow, status: str, error: str | None = None) -> None:
        row.status = status
        row.updated_at = now()
        if error is not None:
            row.last_error = error

    def event(
        self, row: MessageRow, stage: str, outcome: str, detail: str | None = None, duration_ms: float | None = None
    ) -> None:
        event = EventRow(
            message_pk=row.id, stage=stage, outcome=outcome, detail=detail, at=now(), duration_ms=duration_ms
        )
        self.session.add(event)
        self.events.append(event)

    # ---------------------------------------------------------------- outbox

    def add_outgoing(self, row: MessageRow, out: Outgoing) -> OutboxRow:
        stamp = now()
        entry = OutboxRow(
            message_pk=row.id,
            message_id=out.message_id,
            exchange=out.exchange.value,
            routing_key=out.routing_key,
            message_type=out.message_type,
            correlation_id=out.correlation_id,
            body=out.body,
            headers={"schema_version": out.schema_version, **out.headers},
            status="pending",
            attempts=0,
            created_at=stamp,
            next_attempt_at=stamp + self._grace,
        )
        self.session.add(entry)
        self.outbox.append(entry)
        return entry

    def due_outbox(self, limit: int) -> list[OutboxRow]:
        """Pending rows whose next attempt is due; locked so two workers never publish the same row."""
        query = (
            select(OutboxRow)
            .where(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= now())
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        if self.session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self.session.scalars(query))

    def mark_sent(self, ids: list[int]) -> None:
        if ids:
            self.session.execute(
                update(OutboxRow).where(OutboxRow.id.in_(ids)).values(status="sent", sent_at=now(), last_error=None)
            )

    # ---------------------------------------------------------------- order view

    def order(self, customer: str, order_id: str) -> OrderRow | None:
        return self.session.get(OrderRow, (customer, order_id))

    def add_order(self, **values: Any) -> OrderRow:
        stamp = now()
        row = OrderRow(created_at=stamp, updated_at=stamp, **values)
        self.session.add(row)
        return row
