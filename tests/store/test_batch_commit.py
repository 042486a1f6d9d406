"""A batch's commit: the unit reports the ids its rows were stored under, and a failure mid-commit stores nothing
and is one the worker's retry recognises."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select, text

from broker.envelope import Exchange, Outgoing
from broker.runtime import _stored_meanwhile, _transient
from broker.store import driver
from broker.store.tables import MESSAGES, OUTBOX
from broker.store.unit_of_work import UnitOfWork
from tests.support.fixtures import Store


def _message(uow: UnitOfWork, n: int) -> Any:
    return uow.add_message(
        message_id=f"m-{n}",
        direction="inbound",
        message_type="CustomerOrder",
        customer_number="1001",
        correlation_id=f"ORD-{n}",
        order_ref=f"ORD-{n}",
        patient_ref=None,
        status="forwarded",
        payload=b"<x/>",
        properties={"n": n},
        replay_of=None,
    )


def _batch(uow: UnitOfWork, numbers: range) -> None:
    """New messages, each with an order and an outgoing message: what a batch of orders writes."""
    for n in numbers:
        row = _message(uow, n)
        uow.orders.add(customer_number="1001", order_id=f"ORD-{n}", kind="CustomerOrder", status="sent")
        uow.event(row, "validate", "ok")
        uow.add_outgoing(row, Outgoing(Exchange.SESAM2_OUT, "order", f"<out n='{n}'/>".encode(), f"out-{n}", "Order"))


def _count(store: Store, table: Any) -> int:
    with store.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.mark.parametrize("size", [1, 3, 12])  # through the driver, and SQLAlchemy's multi-row statements
def test_a_batch_commits_its_rows_under_the_ids_it_reports_in_the_order_they_were_made(store: Store, size: int) -> None:
    with UnitOfWork(store.sessions) as uow:
        _batch(uow, range(size))
        uow.commit()
        outbox = list(uow.outbox)
        messages = [(row.id, row.message_id) for row in uow.messages]
    assert [pk for pk, _ in messages] == sorted(pk for pk, _ in messages)  # ascending in the order made
    assert [pk for pk, _ in outbox] == sorted(pk for pk, _ in outbox)  # the relay publishes in id order
    with store.sessions() as session:
        stored = {pk: message_id for pk, message_id in session.execute(select(MESSAGES.c.id, MESSAGES.c.message_id))}
        assert stored == dict(messages)
        sent = {
            out_id: (pk, mpk)
            for pk, out_id, mpk in session.execute(select(*OUTBOX.c["id", "message_id", "message_pk"]))
        }
        # one outgoing message per message, made in the same order
        assert sent == {out.message_id: (pk, mpk) for (pk, out), (mpk, _) in zip(outbox, messages, strict=True)}
        steps = session.scalars(select(MESSAGES.c.steps)).all()
        assert steps and all([step["stage"] for step in found] == ["validate"] for found in steps)


def test_an_order_another_worker_opened_meanwhile_fails_the_whole_batch_as_the_retry_expects(store: Store) -> None:
    with UnitOfWork(store.sessions) as uow:
        _batch(uow, range(1, 2))
        uow.commit()
    before = (_count(store, MESSAGES), _count(store, OUTBOX))
    with pytest.raises(Exception) as raised, UnitOfWork(store.sessions) as uow:
        _batch(uow, range(2, 4))
        uow.orders.add(customer_number="1001", order_id="ORD-1", kind="CustomerOrder", status="sent")  # taken
        uow.commit()
    assert _stored_meanwhile(raised.value), raised.value  # the worker retries the batch, which then finds it
    assert (_count(store, MESSAGES), _count(store, OUTBOX)) == before  # nothing of the failed batch
    with UnitOfWork(store.sessions) as uow:  # the pool's connection is usable again
        _batch(uow, range(2, 4))
        uow.commit()
    assert _count(store, MESSAGES) == before[0] + 2


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_connection_lost_before_the_commit_is_a_transient_fault_and_the_next_batch_gets_a_fresh_one(
    store: Store,
) -> None:
    with pytest.raises(Exception) as raised, UnitOfWork(store.sessions) as uow:
        uow.orders.load([("1001", "ORD-9")])  # the batch's reads: its connection is open
        _batch(uow, range(9, 11))
        pid = uow.session.execute(text("SELECT pg_backend_pid()")).scalar()
        with store.sessions() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        uow.commit()
    assert _transient(raised.value), raised.value  # the worker backs off and retries, not ends
    assert _count(store, MESSAGES) == 0
    with UnitOfWork(store.sessions) as uow:
        _batch(uow, range(9, 11))
        uow.commit()
    assert _count(store, MESSAGES) == 2 and _count(store, OUTBOX) == 2


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_nothing_of_a_batch_runs_or_locks_before_its_one_message_is_sent(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writes wait in the worker until the COMMIT's message, which the server runs only once all of it has
    arrived. Sent as they came (psycopg's pipeline mode), they ran and locked at once, and a worker frozen before
    their Sync held the locks with no timeout to end them: another session's insert of the same key waited."""
    kept: list[str] = []
    release = driver.release

    def meanwhile(session: Any) -> None:  # the unit of work releases before the ORM's flush: mid-commit
        kept.extend(session.info.get("hmc.held_statements") or [])
        with store.sessions() as other:
            other.execute(text("SET lock_timeout = '2s'"))  # a held lock would fail this insert, not hang it
            other.execute(
                text(
                    "INSERT INTO orders (customer_number, order_id, kind, status, lines, created_at, updated_at)"
                    " VALUES ('1001', 'ORD-30', 'CustomerOrder', 'sent', '{}', now(), now())"
                )
            )
            other.commit()
        release(session)

    monkeypatch.setattr(driver, "release", meanwhile)
    with pytest.raises(Exception) as raised, UnitOfWork(store.sessions) as uow:
        _batch(uow, range(30, 31))
        uow.commit()
    assert any("INSERT INTO orders" in statement for statement in kept), "the batch's writes were kept, not sent"
    assert _stored_meanwhile(raised.value), raised.value  # the batch then meets the order: retried, as ever
    assert _count(store, MESSAGES) == 0


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_connection_lost_before_the_one_message_commit_is_transient_and_stores_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes after the ids are drawn: the writes and the COMMIT meet a closed connection."""
    reserve = driver.reserve_ids

    def reserve_then_lose(session: Any, counts: Any) -> Any:
        ids = reserve(session, counts)
        with store.sessions() as other:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return ids

    monkeypatch.setattr(driver, "reserve_ids", reserve_then_lose)
    with pytest.raises(Exception) as raised, UnitOfWork(store.sessions) as uow:
        _batch(uow, range(20, 22))
        uow.commit()
    assert _transient(raised.value), raised.value
    monkeypatch.setattr(driver, "reserve_ids", reserve)
    assert _count(store, MESSAGES) == 0
    with UnitOfWork(store.sessions) as uow:
        _batch(uow, range(20, 22))
        uow.commit()
    assert _count(store, MESSAGES) == 2 and _count(store, OUTBOX) == 2
