"""The hot path's small statements go through the driver (broker/store/driver.py), larger ones through SQLAlchemy:
both must store and read the same rows, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select

from broker.store import driver
from broker.store.tables import EVENTS, MESSAGES, ORDERS, MessageRow, OrderRow
from broker.store.unit_of_work import UnitOfWork
from tests.support.fixtures import Store

T0 = datetime(2026, 12, 7, 8, 0, 0, 123456, tzinfo=UTC)


def _row(n: int) -> dict[str, object]:
    stamp = T0 + timedelta(seconds=n)
    return {
        "message_id": f"m-{n}",
        "direction": "inbound",
        "message_type": "CustomerOrder",
        "customer_number": "1001",
        "correlation_id": f"ORD-{n}",
        "order_ref": f"ORD-{n}",
        "patient_ref": None,
        "status": "forwarded",
        "attempts": 1,
        "last_error": None,
        "received_at": stamp,
        "updated_at": stamp,
        "payload": f"<x n='{n}'>å</x>".encode(),
        "properties": {"headers": {"n": n, "text": "Skåne"}, "list": [1, None]},
        "replay_of": None,
    }


@pytest.mark.parametrize("count", [1, driver.SMALL, driver.SMALL + 1, 40])
def test_ids_come_back_in_row_order_and_rows_read_back_as_written(store: Store, count: int) -> None:
    rows = [_row(n) for n in range(count)]
    with store.sessions() as session:
        ids = driver.insert_ids(session, MESSAGES, rows)
        session.commit()
    assert len(set(ids)) == count
    with store.sessions() as session:
        stored = {r.id: r for r in session.scalars(select(MessageRow).where(MessageRow.id.in_(ids)))}
    for pk, row in zip(ids, rows, strict=True):
        got = stored[pk]
        assert got.message_id == row["message_id"]
        assert got.payload == row["payload"]
        assert got.properties == row["properties"]
        assert got.received_at.replace(tzinfo=got.received_at.tzinfo or UTC) == row["received_at"]


@pytest.mark.parametrize("count", [1, 3, 7])
def test_inserts_without_ids_store_every_row(store: Store, count: int) -> None:
    with store.sessions() as session:
        (pk,) = driver.insert_ids(session, MESSAGES, [_row(0)])
        steps = [
            {"message_pk": pk, "stage": f"s{i}", "outcome": "ok", "detail": None, "at": T0, "duration_ms": 0.5}
            for i in range(count)
        ]
        driver.insert(session, insert(EVENTS), steps)
        session.commit()
    with store.sessions() as session:
        stages = session.execute(select(EVENTS.c.stage, EVENTS.c.duration_ms).where(EVENTS.c.message_pk == pk))
        assert sorted(stages) == [(f"s{i}", 0.5) for i in range(count)]


def test_a_row_that_leaves_out_a_column_is_refused_by_name(store: Store) -> None:
    row = _row(0)
    del row["attempts"]  # the column has a default: SQLAlchemy would bind it, the driver would bind nothing
    with store.sessions() as session, pytest.raises(ValueError, match="attempts"):
        driver.insert_ids(session, MESSAGES, [row])


def test_orders_read_through_the_driver_come_back_typed_and_changes_in_place_are_written(store: Store) -> None:
    with UnitOfWork(store.sessions) as uow:
        for n in range(3):
            uow.orders.add(
                customer_number="1001", order_id=f"O-{n}", kind="CustomerOrder", status="sent", lines={"1": {"q": n}}
            )
        uow.commit()
    with UnitOfWork(store.sessions) as uow:
        uow.orders.load([("1001", "O-0"), ("1001", "O-1"), ("1001", "absent")])
        first = uow.orders.get("1001", "O-0")
        assert first is not None and first.lines == {"1": {"q": 0}}
        assert isinstance(first.created_at, datetime)
        assert uow.orders.get("1001", "absent") is None
        first.lines["1"]["q"] = 5  # in place: the repository must still see the change
        first.status = "confirmed"
        uow.commit()
    with store.sessions() as session:
        stored = session.get(OrderRow, ("1001", "O-0"))
        assert stored is not None and stored.lines == {"1": {"q": 5}} and stored.status == "confirmed"
        assert session.scalar(select(ORDERS.c.status).where(ORDERS.c.order_id == "O-1")) == "sent"
