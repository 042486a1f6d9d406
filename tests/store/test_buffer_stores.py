"""Buffer stock and automatic replenishment on the embedded store (SQLite), through the pipeline."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.model.codes import AddressKind
from broker.store.db import make_engine, sessions, upgrade
from broker.store.tables import MessageRow, OrderRow, OutboxRow
from tests.support.buffer import (
    KEPT,
    OTHER,
    STORE,
    T0,
    UNKEPT,
    delivery_note,
    order_cancelled,
    replenishment_orders,
    replenishments,
    run,
    stock,
    stock_report,
    withdrawal,
)
from tests.support.fixtures import Store, every_step
from tests.support.profiles import at_most


@pytest.fixture
def factory(store: Store) -> sessionmaker[Session]:
    return store.sessions


def events(factory: sessionmaker[Session], outcome: str) -> list[str]:
    with factory() as session:
        return [e.detail or "" for e in every_step(session) if e.outcome == outcome]


def test_a_stock_report_sets_levels_and_a_withdrawal_lowers_them(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 5, OTHER: 4}))
    assert (stock(factory, KEPT), stock(factory, OTHER)) == (5, 4)
    run(factory, withdrawal(KEPT, 2))
    assert stock(factory, KEPT) == 3 and replenishments(factory) == []
    with factory() as session:  # the report and the withdrawal went to SESAM2 as ever
        types = [r.message_type for r in session.scalars(select(OutboxRow))]
    assert types == ["BufferStockReport", "BufferWithdrawal"]


def test_under_running_the_safety_level_opens_one_replenishment_order(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 3}))
    run(factory, withdrawal(KEPT, 2))  # 1 < safety level 2
    run(factory, withdrawal(KEPT, 1))  # still under: the open order covers it
    (opened,) = replenishments(factory)
    assert (opened.status, opened.quantity, opened.on_hand_at_order, opened.safety_level) == ("open", 5, 1, 2)
    (order,) = replenishment_orders(factory)
    assert order.order_id == opened.order_id and order.lines[0].article_number == KEPT
    assert order.lines[0].quantity == 5 and order.patient is None
    assert order.delivery.kind is AddressKind.BUFFER_STORE and order.delivery.buffer_store_id == STORE
    assert order.prescriber.hsa_id == "SE2321000016-P4Q8" and order.header.sender_system == "HMC-Broker"
    with factory() as session:  # an order in the order view, so SESAM2's answers correlate
        view = session.get(OrderRow, ("1001", opened.order_id))
        assert view is not None and view.kind == "Replenishment" and view.status == "sent"
    assert stock(factory, KEPT) == 0


def test_a_stock_report_under_the_safety_level_replenishes_too(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 1, OTHER: 1}))  # OTHER: 1 is not under safety level 1
    assert [r.article_number for r in replenishments(factory)] == [KEPT]


def test_a_delivery_note_restores_stock_and_closes_the_order_and_a_new_under_run_opens_another(
    factory: sessionmaker[Session],
) -> None:
    run(factory, stock_report({KEPT: 2}))
    run(factory, withdrawal(KEPT, 1))
    (first,) = replenishments(factory)
    run(factory, delivery_note(first.order_id, KEPT, 5))
    assert stock(factory, KEPT) == 6
    (closed,) = replenishments(factory)
    assert closed.status == "delivered" and closed.closed_by is not None
    with factory() as session:
        view = session.get(OrderRow, ("1001", first.order_id))
        assert view is not None and view.status == "delivered"
    run(factory, withdrawal(KEPT, 5))  # 1 < 2 again: a new under-run
    second = replenishments(factory)[1]
    assert second.status == "open" and second.order_id != first.order_id
    assert len(replenishment_orders(factory)) == 2


def test_a_redelivered_or_replayed_message_moves_stock_once(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 3}))
    once = withdrawal(KEPT, 2)
    run(factory, once)
    run(factory, once)  # de-duplicated by the pipeline
    run(factory, once, once)  # twice in one batch
    assert stock(factory, KEPT) == 1 and len(replenishments(factory)) == 1 and len(replenishment_orders(factory)) == 1


def test_the_replenishment_order_has_ids_derived_from_its_cause(factory: sessionmaker[Session]) -> None:
    from broker.handlers.buffer_stores import replenishment_order
    from tests.support.buffer import STORE_CONFIG

    article = STORE_CONFIG.articles[0]
    cause = "5f0c9a57-5c7e-4d8b-9d65-5d4f0f7d2a11"
    a = replenishment_order("1001", STORE_CONFIG, article, 1, cause)
    b = replenishment_order("1001", STORE_CONFIG, article, 1, cause)
    c = replenishment_order("1001", STORE_CONFIG, article, 1, "6f0c9a57-5c7e-4d8b-9d65-5d4f0f7d2a11")
    assert (a.order_id, a.header.message_id) == (b.order_id, b.header.message_id)
    assert a.order_id != c.order_id and a.header.causation_id == cause


def test_a_cancelled_replenishment_closes_and_the_next_change_reorders(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 1}))
    (first,) = replenishments(factory)
    run(factory, order_cancelled(first.order_id))
    assert replenishments(factory)[0].status == "cancelled" and len(replenishments(factory)) == 1
    run(factory, withdrawal(KEPT, 1))
    assert [r.status for r in replenishments(factory)] == ["cancelled", "open"]


def test_unkept_articles_and_unknown_stores_are_forwarded_with_a_warning(factory: sessionmaker[Session]) -> None:
    run(factory, withdrawal(UNKEPT, 1), withdrawal(KEPT, 1, store="BUF-1001-99"))
    with factory() as session:
        assert [r.status for r in session.scalars(select(MessageRow))] == ["forwarded", "forwarded"]
    warnings = events(factory, "warning")
    assert any(UNKEPT in w for w in warnings) and any("BUF-1001-99 is not configured" in w for w in warnings)
    assert replenishments(factory) == []


def test_a_withdrawal_before_any_count_is_recorded_without_guessing_a_level(factory: sessionmaker[Session]) -> None:
    run(factory, withdrawal(KEPT, 1))
    assert stock(factory, KEPT) is None and replenishments(factory) == []
    assert any("not counted yet" in e for e in events(factory, "ok"))


def test_a_late_stock_report_keeps_the_withdrawals_made_after_its_count(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 9}, at=T0))
    run(factory, withdrawal(KEPT, 2, at=T0 + timedelta(hours=3)))
    run(factory, stock_report({KEPT: 8}, at=T0 + timedelta(hours=2)))  # counted before that withdrawal
    assert stock(factory, KEPT) == 6
    run(factory, stock_report({KEPT: 20}, at=T0 + timedelta(hours=1)))  # older than the last count
    assert stock(factory, KEPT) == 6
    assert any("counted before the last count" in w for w in events(factory, "warning"))


def test_stock_below_zero_is_kept_and_flagged(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 1}))
    run(factory, withdrawal(KEPT, 3))
    assert stock(factory, KEPT) == -2
    assert any("below zero" in w for w in events(factory, "warning"))


@settings(max_examples=at_most(15), deadline=None)
@given(start=st.integers(0, 12), taken=st.lists(st.integers(1, 4), min_size=1, max_size=6))
def test_stock_is_the_count_minus_the_withdrawals_and_one_order_per_under_run(
    tmp_path_factory: pytest.TempPathFactory, start: int, taken: list[int]
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('h') / 'store.sqlite'}")
    upgrade(engine)
    factory = sessions(engine)
    run(factory, stock_report({KEPT: start}))
    for quantity in taken:
        run(factory, withdrawal(KEPT, quantity))
    assert stock(factory, KEPT) == start - sum(taken)
    levels = [start - sum(taken[:i]) for i in range(len(taken) + 1)]
    # No delivery closes it: one order as soon as any level was under the safety level (2), else none.
    assert len(replenishments(factory)) == (1 if min(levels) < 2 else 0)
    engine.dispose()


def test_an_ordinary_order_to_the_store_stays_a_customer_order_and_its_delivery_counts(
    factory: sessionmaker[Session],
) -> None:
    run(factory, stock_report({KEPT: 4}))
    run(factory, delivery_note("WS-1001-2026-000123", KEPT, 2))  # the unit's own order, not a replenishment
    assert stock(factory, KEPT) == 6 and replenishments(factory) == [] and replenishment_orders(factory) == []
