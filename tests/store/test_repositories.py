"""The store's repositories on SQLite and PostgreSQL alike (the `store` fixture runs each test on both).

The handlers' behaviour is tested on the fake unit of work (tests/unit/test_handlers.py); these tests hold the
real repositories to what the fakes promise, against the real databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from broker.envelope import Exchange, Outgoing
from broker.store.prescriber_register import Sighting
from broker.store.tables import MessageRow, OutboxRow, PrescriberRow
from broker.store.unit_of_work import UnitOfWork
from tests.support.fixtures import Store, new_message

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _out(message_id: str) -> Outgoing:
    return Outgoing(Exchange.SESAM2_OUT, "CustomerOrder", b"<y/>", message_id, "CustomerOrder", "ORD-1")


def test_orders_are_read_per_batch_and_an_absent_one_is_known_absent(store: Store) -> None:
    with UnitOfWork(store.sessions) as uow:
        uow.orders.add(customer_number="1001", order_id="ORD-1", kind="CustomerOrder", status="sent", lines={})
        uow.commit()
    with UnitOfWork(store.sessions) as uow:
        uow.orders.load([("1001", "ORD-1"), ("1001", "ORD-2")])
        found = uow.orders.get("1001", "ORD-1")
        assert found is not None and found.status == "sent"
        assert uow.orders.get("1001", "ORD-2") is None
        found.status = "confirmed"
        uow.commit()
    with UnitOfWork(store.sessions) as uow:
        again = uow.orders.get("1001", "ORD-1")
        assert again is not None and again.status == "confirmed", "a change to a loaded order is committed"


def test_buffer_stock_rows_are_made_once_locked_in_key_order_and_moved_once_pernew_message(store: Store) -> None:
    keys = [("1001", "BUF-1", "B"), ("1001", "BUF-1", "A")]
    fresh = [
        {
            "customer_number": c,
            "buffer_store_id": s,
            "article_number": a,
            "safety_level": 2,
            "refill_quantity": 5,
            "on_hand": None,
            "counted_at": None,
            "updated_at": T0,
        }
        for c, s, a in keys
    ]
    with UnitOfWork(store.sessions) as uow:
        rows = uow.buffer_stock.lock(fresh, sorted(keys))
        assert [r.article_number for r in rows] == ["A", "B"]
        stock = uow.buffer_stock.get(("1001", "BUF-1", "A"))
        assert stock is not None
        stock.on_hand = 3
        uow.buffer_stock.record_movement(stock, "count", 3, "m-1", T0)
        stock.on_hand = 2
        uow.buffer_stock.record_movement(stock, "withdrawal", -1, "m-2", T0 + timedelta(hours=1))
        uow.commit()
    with UnitOfWork(store.sessions) as uow:
        (stock,) = uow.buffer_stock.lock(fresh[1:], [("1001", "BUF-1", "A")])
        assert stock.on_hand == 2, "an existing row is locked, not made again"
        assert uow.buffer_stock.applied("withdrawal", "m-2", "A")
        assert not uow.buffer_stock.applied("withdrawal", "m-2", "B")
        assert uow.buffer_stock.moved_since(stock, T0) == -1, "counts are not movements since a count"


def test_one_open_replenishment_per_article_and_closing_names_the_articles(store: Store) -> None:
    values = {
        "customer_number": "1001",
        "buffer_store_id": "BUF-1",
        "article_number": "A",
        "order_id": "PF-1",
        "message_id": "m-r1",
        "quantity": 5,
        "on_hand_at_order": 1,
        "safety_level": 2,
        "caused_by": "m-2",
    }
    with UnitOfWork(store.sessions) as uow:
        stock = uow.buffer_stock.lock(
            [{**{k: values[k] for k in ("customer_number", "buffer_store_id", "article_number")},
              "safety_level": 2, "refill_quantity": 5, "on_hand": 1, "counted_at": None, "updated_at": T0}],
            [("1001", "BUF-1", "A")],
        )[0]  # fmt: skip
        assert not uow.buffer_stock.replenishment_open(stock)
        uow.buffer_stock.open_replenishment(**values)
        assert uow.buffer_stock.replenishment_open(stock)
        with pytest.raises(IntegrityError):
            uow.buffer_stock.open_replenishment(**{**values, "order_id": "PF-2", "message_id": "m-r2"})
    with UnitOfWork(store.sessions) as uow:
        uow.buffer_stock.open_replenishment(**values)
        uow.commit()
    with UnitOfWork(store.sessions) as uow:
        assert uow.buffer_stock.close_replenishments("1001", "PF-1", "delivered", "m-note") == ["A"]
        assert uow.buffer_stock.close_replenishments("1001", "PF-1", "delivered", "m-note") == [], "closed once"
        uow.commit()


def test_invoice_data_is_kept_once_and_the_latest_of_a_month_comes_first(store: Store) -> None:
    with UnitOfWork(store.sessions) as uow:
        for number, message_id in (("F-1", "m-i1"), ("F-2", "m-i2")):
            row = new_message(uow, message_id)
            uow.flush()
            uow.invoices.add(
                customer_number="1001",
                period="2026-10",
                invoice_number=number,
                total_amount="10.00",
                lines=[],
                message_pk=row.id,
                message_id=message_id,
            )
        uow.commit()
    with UnitOfWork(store.sessions) as uow:
        assert uow.invoices.kept("m-i1") and not uow.invoices.kept("m-other")
        assert [i.invoice_number for i in uow.invoices.of_month("1001", "2026-10")] == ["F-2", "F-1"]
        assert uow.invoices.of_month("1001", "2026-09") == []


def test_publish_outcomes_mark_rows_sent_count_failures_and_park_after_the_budget(store: Store) -> None:
    with UnitOfWork(store.sessions, relay_grace_s=0) as uow:
        sent_msg, failed_msg = new_message(uow, "m-s"), new_message(uow, "m-f")
        uow.add_outgoing(sent_msg, _out("o-s"))
        uow.add_outgoing(failed_msg, _out("o-f"))
        uow.commit()
        (sent_id, _), (failed_id, _) = uow.outbox
    with UnitOfWork(store.sessions) as uow:
        assert [r.id for r in uow.publish_marks.pending_of([sent_msg.id, failed_msg.id])] == [sent_id, failed_id]
        assert uow.publish_marks.record([sent_id], [(failed_id, "nacked")], budget=2) == []
        uow.commit()
    with store.sessions() as session:
        assert session.get(OutboxRow, sent_id).status == "sent"  # type: ignore[union-attr]
        assert session.get(MessageRow, sent_msg.id).status == "delivered", "all it sends went out"  # type: ignore[union-attr]
        failed = session.get(OutboxRow, failed_id)
        assert failed is not None and (failed.status, failed.attempts, failed.last_error) == ("pending", 1, "nacked")
    with UnitOfWork(store.sessions) as uow:
        assert [r.id for r in uow.publish_marks.due(10)] == [], "not due before its backoff"
        parked = uow.publish_marks.record([], [(failed_id, "nacked")], budget=2)
        assert [r.id for r in parked] == [failed_id]
        uow.commit()
    with store.sessions() as session:
        assert session.get(OutboxRow, failed_id).status == "parked"  # type: ignore[union-attr]
        message = session.get(MessageRow, failed_msg.id)
        assert message is not None and message.status == "parked" and message.last_error == "publish: nacked"


def test_the_prescriber_register_adds_up_sightings_and_widens_first_and_last_seen(store: Store) -> None:
    def seen(at: datetime, name: str) -> Sighting:
        return Sighting("1001", "SE2321000016-P4Q8", "prescriber", "SE2321000016-7HK2", name, at)

    for batch in ([seen(T0, "Anna"), seen(T0 + timedelta(days=1), "Anna L")], [seen(T0 - timedelta(days=1), "A")]):
        with UnitOfWork(store.sessions) as uow:
            uow.prescribers.add(batch)
            uow.commit()
    with store.sessions() as session:
        (row,) = session.scalars(select(PrescriberRow))
        assert row.message_count == 3 and row.name == "Anna L", "the name of the latest sighting"
        assert row.first_seen.replace(tzinfo=UTC) == T0 - timedelta(days=1)
        assert row.last_seen.replace(tzinfo=UTC) == T0 + timedelta(days=1)


def test_the_gauges_count_backlog_parked_rejections_and_replays(store: Store) -> None:
    from broker.store import queries

    with UnitOfWork(store.sessions) as uow:
        original = new_message(uow, "m-o", status="parked")
        new_message(uow, "m-r", status="rejected")
        uow.add_outgoing(original, _out("o-1"))
        uow.flush()
        replay = new_message(uow, "m-o")
        replay.replay_of = original.id
        uow.commit()
    with store.sessions() as session:
        found = queries.gauges(session)
    assert (found.backlog, found.parked, found.rejected_last_hour, found.replays_last_hour) == (1, 1, 1, 1)
