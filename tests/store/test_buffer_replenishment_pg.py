"""Automatic replenishment on the real PostgreSQL: competing workers, redeliveries, a delivery note.

Each thread is a worker of its own: its own session and transaction, started together at a barrier,
all under-running the same article of the same buffer store at the same moment.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.envelope import Delivery
from broker.store.tables import BufferMovementRow
from tests.support.buffer import (
    KEPT,
    SETTINGS,
    delivery_note,
    replenishment_orders,
    replenishments,
    run,
    stock,
    stock_report,
    withdrawal,
)
from tests.support.fixtures import Store

WORKERS = 4


pytestmark = pytest.mark.parametrize("store", ["postgresql"], indirect=True)


@pytest.fixture
def factory(store: Store) -> sessionmaker[Session]:
    return store.sessions


def together(factory: sessionmaker[Session], batches: list[list[Delivery]]) -> None:
    """Handle each batch in a thread of its own, all starting at once; re-raise any thread's failure."""
    start = threading.Barrier(len(batches))
    failures: list[BaseException] = []

    def work(batch: list[Delivery]) -> Callable[[], None]:
        def go() -> None:
            try:
                start.wait()
                run(factory, *batch)
            except BaseException as e:
                failures.append(e)

        return go

    threads = [threading.Thread(target=work(b)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures


def test_concurrent_under_runs_open_exactly_one_replenishment(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 2}))
    # Every withdrawal leaves the article under its safety level (2): each worker would order alone.
    together(factory, [[withdrawal(KEPT, 1)] for _ in range(WORKERS)])
    assert stock(factory, KEPT) == 2 - WORKERS
    (opened,) = replenishments(factory)
    assert opened.status == "open"
    assert [o.order_id for o in replenishment_orders(factory)] == [opened.order_id]


def test_a_redelivery_racing_its_original_moves_stock_and_orders_once(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 2}))
    same = withdrawal(KEPT, 1)
    together(factory, [[same], [same], [same]])
    run(factory, same)  # and once more, later
    assert stock(factory, KEPT) == 1
    with factory() as session:
        moves = session.scalars(select(BufferMovementRow).where(BufferMovementRow.kind == "withdrawal")).all()
    assert len(moves) == 1
    assert len(replenishments(factory)) == 1 and len(replenishment_orders(factory)) == 1


def test_a_delivery_note_closes_it_and_the_next_under_run_orders_again(factory: sessionmaker[Session]) -> None:
    run(factory, stock_report({KEPT: 2}))
    together(factory, [[withdrawal(KEPT, 1)], [withdrawal(KEPT, 1)]])
    (first,) = replenishments(factory)
    note = delivery_note(first.order_id, KEPT, 5)
    together(factory, [[note], [note]])  # SESAM2's note, redelivered at once
    assert stock(factory, KEPT) == 5
    assert [r.status for r in replenishments(factory)] == ["delivered"]
    together(factory, [[withdrawal(KEPT, 2)], [withdrawal(KEPT, 2)]])  # 5 -> 1: a new under-run
    assert [r.status for r in replenishments(factory)] == ["delivered", "open"]
    assert len(replenishment_orders(factory)) == 2
    assert SETTINGS.customer("1001") is not None
