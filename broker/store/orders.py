"""The order view's repository: one row per customer order (work order, pickup, report), read per batch.

The unit's orders are plain records (`Order`), not ORM objects: reading a batch's orders through the ORM and
flushing a new one cost about a fifth of a batch of one order's CPU. New orders go in with one multi-row
INSERT at flush, orders changed since they were read with one UPDATE each (an executemany).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from broker.store import driver
from broker.store.tables import ORDERS, OrderRow

_COLUMNS = (
    ORDERS.c.customer_number,
    ORDERS.c.order_id,
    ORDERS.c.kind,
    ORDERS.c.status,
    ORDERS.c.sesam2_order_number,
    ORDERS.c.lines,
    ORDERS.c.created_at,
    ORDERS.c.updated_at,
    ORDERS.c.opened_by,
)
# Built once: building them for every batch cost about a tenth of a small batch.
_ORDERS = select(*_COLUMNS).where(
    tuple_(ORDERS.c.customer_number, ORDERS.c.order_id).in_(bindparam("keys", expanding=True))
)
_INSERT = insert(ORDERS)
_UPDATE = (
    update(ORDERS)
    .where(and_(ORDERS.c.customer_number == bindparam("key_customer"), ORDERS.c.order_id == bindparam("key_order")))
    .values(
        status=bindparam("status"),
        sesam2_order_number=bindparam("sesam2_order_number"),
        lines=bindparam("lines"),
        updated_at=bindparam("updated_at"),
    )
)


@dataclass(slots=True, eq=False)
class Order:
    """What the broker knows of one order, as this unit read or made it."""

    customer_number: str
    order_id: str
    kind: str
    status: str
    sesam2_order_number: str | None
    lines: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    opened_by: str | None
    new: bool = False  # made in this unit: inserted at flush
    written: tuple[Any, ...] | None = field(default=None, repr=False)  # the changeable columns as last stored

    def changeable(self) -> tuple[Any, ...]:
        # The lines as text: a handler may change the dict in place, and a copy would share its inner dicts.
        return (self.status, self.sesam2_order_number, json.dumps(self.lines, sort_keys=True), self.updated_at)


class Orders:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._known: dict[tuple[str, str], Order | None] = {}  # as this unit has read them, absent ones too

    def load(self, keys: Iterable[tuple[str, str]]) -> None:
        """Read the batch's orders in one query; get() then answers from memory."""
        wanted = [k for k in set(keys) if k not in self._known]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found = {(o.customer_number, o.order_id): o for o in self._read(chunk)}
            for key in chunk:
                self._known[key] = found.get(key)

    def get(self, customer: str, order_id: str) -> Order | None:
        key = (customer, order_id)
        if key not in self._known:
            self.load([key])
        return self._known[key]

    def add(self, **values: Any) -> Order:
        stamp = datetime.now(UTC)
        values = {"sesam2_order_number": None, "lines": {}, "opened_by": None, **values}
        order = Order(created_at=stamp, updated_at=stamp, new=True, **values)
        self._known[(order.customer_number, order.order_id)] = order
        return order

    def write(self) -> None:
        """Insert the unit's new orders and update those changed since they were read or written."""
        known = [o for o in self._known.values() if o is not None]
        new = [o for o in known if o.new]
        changed = [o for o in known if not o.new and o.written != o.changeable()]
        if new:
            driver.insert(self._session, _INSERT, [_values(o) for o in new])
        if changed:
            driver.execute(
                self._session,
                _UPDATE,
                [
                    {
                        "key_customer": o.customer_number,
                        "key_order": o.order_id,
                        "status": o.status,
                        "sesam2_order_number": o.sesam2_order_number,
                        "lines": o.lines,
                        "updated_at": o.updated_at,
                    }
                    for o in changed
                ],
            )
        for o in new + changed:
            o.new, o.written = False, o.changeable()

    def _read(self, keys: list[tuple[str, str]]) -> list[Order]:
        rows: Iterable[Sequence[Any]]
        if len(keys) > driver.SMALL:
            rows = self._session.execute(_ORDERS, {"keys": keys})
        else:
            few = driver.compiled(self._session, ("orders", len(keys)), lambda: _orders_of(len(keys)))
            values = {f"{part}{i}": v for i, key in enumerate(keys) for part, v in zip(("c", "o"), key, strict=True)}
            rows = driver.fetch(self._session, few, values)
        orders = []
        for row in rows:
            order = Order(*row)
            order.written = order.changeable()
            orders.append(order)
        return orders


def _orders_of(count: int) -> Any:
    """The batch's read for `count` orders, each key a parameter pair of its own (driver.py)."""
    keys = [
        and_(ORDERS.c.customer_number == bindparam(f"c{i}"), ORDERS.c.order_id == bindparam(f"o{i}"))
        for i in range(count)
    ]
    return select(*_COLUMNS).where(or_(*keys))


def _values(o: Order) -> dict[str, Any]:
    return {column.name: getattr(o, column.name) for column in _COLUMNS}


def latest(session: Session, kind: str, since: datetime, limit: int) -> list[OrderRow]:
    """The orders of a kind made since `since`, the most recently changed first."""
    query = select(OrderRow).where(OrderRow.kind == kind, OrderRow.created_at >= since)
    return list(session.scalars(query.order_by(OrderRow.updated_at.desc()).limit(limit)))
