"""The order view's repository: one row per customer order (work order, pickup, report), read per batch."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.orm import Session

from broker.store.tables import OrderRow

# Built once: building it for every batch cost about a tenth of a small batch.
_ORDERS = select(OrderRow).where(
    tuple_(OrderRow.customer_number, OrderRow.order_id).in_(bindparam("keys", expanding=True))
)


class Orders:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[tuple[str, str], OrderRow | None] = {}  # as this unit has read them, absent ones too

    def load(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read the batch's orders in one query; get() then answers from memory."""
        wanted = [k for k in set(keys) if k not in self._known]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found = {(o.customer_number, o.order_id): o for o in self._session.scalars(_ORDERS, {"keys": chunk})}
            for key in chunk:
                self._known[key] = found.get(key)

    def get(self, customer: str, order_id: str) -> OrderRow | None:
        key = (customer, order_id)
        if key not in self._known:
            with self._session.no_autoflush:  # what is pending goes in with the batch's one flush
                self._known[key] = self._session.get(OrderRow, key)
        return self._known[key]

    def add(self, **values: Any) -> OrderRow:
        stamp = datetime.now(UTC)
        row = OrderRow(created_at=stamp, updated_at=stamp, **values)
        self._session.add(row)
        self._known[(row.customer_number, row.order_id)] = row
        return row


def latest(session: Session, kind: str, since: datetime, limit: int) -> list[OrderRow]:
    """The orders of a kind made since `since`, the most recently changed first."""
    query = select(OrderRow).where(OrderRow.kind == kind, OrderRow.created_at >= since)
    return list(session.scalars(query.order_by(OrderRow.updated_at.desc()).limit(limit)))
