"""The outbox's repository for what happens after the commit: publish outcomes, rows due again, backlog.

Rows are written by the unit of work with the state change they belong to (broker/store/unit_of_work.py);
the worker publishes them after the commit and records here what came of it. A row that fails is tried
again with backoff by the relay (due()); after its attempt budget it is parked with its message, for replay.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, BindParameter, any_, bindparam, exists, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from broker.store import driver
from broker.store.tables import MESSAGES, OUTBOX, MessageRow, OutboxRow

# Publish outcomes, as Core statements built once: the ORM's bulk UPDATE matched the session's objects against
# them (13 % of a worker's time), and building them anew for every batch cost more than running them.
_SENT_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
_MARK_SENT = (
    update(OUTBOX).where(OUTBOX.c.id.in_(_SENT_IDS)).values(status="sent", sent_at=bindparam("stamp"), last_error=None)
)
_MARK_DELIVERED = (
    update(MESSAGES)
    .where(
        MESSAGES.c.id.in_(select(OUTBOX.c.message_pk).where(OUTBOX.c.id.in_(_SENT_IDS))),
        MESSAGES.c.status == "forwarded",
        ~exists().where(OUTBOX.c.message_pk == MESSAGES.c.id, OUTBOX.c.status != "sent"),  # all of it went out
    )
    .values(status="delivered", updated_at=bindparam("stamp"))
)


# The same two on PostgreSQL, the ids one array parameter: compiled once (driver.py) whatever their number. With
# SQLAlchemy's expanding IN, each of a second's few hundred ids was rendered into the SQL anew (with its cast).
_IDS_ARRAY = bindparam("ids", type_=ARRAY(BigInteger))
_MARK_SENT_PG = (
    update(OUTBOX)
    .where(OUTBOX.c.id == any_(_IDS_ARRAY))
    .values(status="sent", sent_at=bindparam("stamp"), last_error=None)
)
_MARK_DELIVERED_PG = (
    update(MESSAGES)
    .where(
        MESSAGES.c.id.in_(select(OUTBOX.c.message_pk).where(OUTBOX.c.id == any_(_IDS_ARRAY))),
        MESSAGES.c.status == "forwarded",
        ~exists().where(OUTBOX.c.message_pk == MESSAGES.c.id, OUTBOX.c.status != "sent"),
    )
    .values(status="delivered", updated_at=bindparam("stamp"))
)


def _same(statement: Any) -> Any:
    return statement


class OutboxMarks:
    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, sent: list[int], failed: list[tuple[int, str]], budget: int) -> list[OutboxRow]:
        """Mark confirmed rows sent (and their messages delivered once all they send is out); count a failed
        row's attempt and set its next one, or park it with its message after `budget` attempts. The rows
        parked now."""
        stamp = datetime.now(UTC)
        if sent:
            marks = {"ids": sent, "stamp": stamp}
            if driver.on_psycopg(self._session):
                for statement in (_MARK_SENT_PG, _MARK_DELIVERED_PG):
                    compiled = driver.compiled(self._session, statement, functools.partial(_same, statement))
                    driver.run(self._session, compiled, [marks])
            else:
                self._session.execute(_MARK_SENT, marks)
                self._session.execute(_MARK_DELIVERED, marks)
        parked = []
        for row_id, error in failed:
            row = self._session.get(OutboxRow, row_id)
            if row is None or row.status != "pending":  # confirmed meanwhile under the same id (a resend)
                continue
            row.attempts += 1
            row.last_error = error
            if row.attempts >= budget:
                row.status = "parked"
                message = self._session.get(MessageRow, row.message_pk)
                if message is not None:
                    message.status, message.last_error, message.updated_at = "parked", f"publish: {error}", stamp
                parked.append(row)
            else:
                row.next_attempt_at = stamp + timedelta(seconds=min(2**row.attempts, 300))
        return parked

    def due(self, limit: int) -> list[OutboxRow]:
        """Pending rows whose next attempt is due; locked so two workers never publish the same row."""
        query = (
            select(OutboxRow)
            .where(OutboxRow.status == "pending", OutboxRow.next_attempt_at <= datetime.now(UTC))
            .order_by(OutboxRow.id)
            .limit(limit)
        )
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(self._session.scalars(query))

    def pending_of(self, message_pks: Iterable[int]) -> list[OutboxRow]:
        """The pending rows of these messages, in the order they were written."""
        query = select(OutboxRow).where(OutboxRow.message_pk.in_(list(message_pks)), OutboxRow.status == "pending")
        return list(self._session.scalars(query.order_by(OutboxRow.id)))
