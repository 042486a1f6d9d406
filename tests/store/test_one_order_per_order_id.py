"""One order per order id (#17): an opening message for an order the broker holds already, under another
MessageId, never reaches SESAM2 twice. The same business content is a repeat (nothing sent); other content
is refused with order.duplicate naming the first message. SQLite and PostgreSQL."""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from broker.config import Customer, Settings
from broker.contract import routing
from broker.contract.dialect import read
from broker.envelope import Delivery, Exchange
from broker.model.codes import Side
from broker.pipeline import Pipeline
from broker.store.tables import MessageRow, OrderRow, OutboxRow
from broker.store.unit_of_work import UnitOfWork
from tests.support.fixtures import Store, stored_steps

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "customer" / "valid"
SETTINGS = Settings(
    customers=(
        Customer("1001", "Region Skåne", "websesam-skane"),
        Customer("1002", "Region Halland", "websesam-halland"),
        Customer("2040", "Västerby kommun"),
    )
)
OPENING = sorted(p for p in FIXTURES.glob("*.xml") if type(read(p.read_bytes()).message) in routing.opening_types())


def resent(body: bytes, *, change: tuple[bytes, bytes] | None = None) -> bytes:
    """The same document under a fresh MessageId and a later SentAt, as a customer system's retry makes it."""
    body = re.sub(rb"<MessageId>[^<]*</MessageId>", f"<MessageId>{uuid.uuid4()}</MessageId>".encode(), body)
    body = re.sub(rb"<SentAt>[^<]*</SentAt>", b"<SentAt>2026-12-07T04:30:00+01:00</SentAt>", body)
    if change is not None:
        assert change[0] in body
        body = body.replace(*change, 1)
    return body


def delivery(body: bytes) -> Delivery:
    message = read(body).message
    assert message is not None
    h = message.header
    return Delivery(
        side=Side.CUSTOMER,
        body=body,
        routing_key=f"{h.customer_number}.{type(message).__name__}",
        message_id=h.message_id,
        correlation_id=h.correlation_id,
        message_type=type(message).__name__,
    )


def run(store: Store, *bodies: bytes) -> None:
    with UnitOfWork(store.sessions) as uow:
        Pipeline(SETTINGS).handle([delivery(b) for b in bodies], uow)
        uow.commit()


def to_sesam2(store: Store) -> list[OutboxRow]:
    with store.sessions() as session:
        return list(session.scalars(select(OutboxRow).where(OutboxRow.exchange == Exchange.SESAM2_OUT.value)))


def messages(store: Store) -> list[MessageRow]:
    with store.sessions() as session:
        return list(session.scalars(select(MessageRow).order_by(MessageRow.id)))


def test_every_opening_type_has_a_fixture() -> None:
    assert {type(read(p.read_bytes()).message) for p in OPENING} == set(routing.opening_types())


@pytest.mark.parametrize("together", [False, True], ids=["later-batch", "same-batch"])
@pytest.mark.parametrize("path", OPENING, ids=lambda p: p.stem)
def test_the_same_content_under_a_new_id_is_a_repeat(store: Store, path: Path, together: bool) -> None:
    first = path.read_bytes()
    again = resent(first)
    if together:
        run(store, first, again)
    else:
        run(store, first)
        run(store, again)
    assert len(to_sesam2(store)) == 1  # one ORDERS (ARBORDER, HAMTORDER, ...), not two
    opener, repeat = messages(store)
    assert (opener.status, repeat.status) == ("forwarded", "repeat")
    with store.sessions() as session:
        steps = stored_steps(session, [repeat.id])
        (order,) = session.scalars(select(OrderRow))
    assert order.opened_by == opener.message_id
    assert any(s.stage == "dedupe" and s.outcome == "repeat" and opener.message_id in (s.detail or "") for s in steps)


# A business change per opening type: the same order id, other content.
CHANGES = {
    "BufferWithdrawal": (b"<Quantity>", b"<Quantity>9"),
    "CustomerOrder": (b"<Quantity>", b"<Quantity>9"),
    "PickupOrder": (b"<RequestedDate>2026-", b"<RequestedDate>2027-"),
    "WorkOrder": (b"<Description>", b"<Description>Also: "),
    "FaultReport": (b"<Description>", b"<Description>Also: "),
    "OrthopaedicReferral": (b"<RequestedService>", b"<RequestedService>Also: "),
}


@pytest.mark.parametrize("path", OPENING, ids=lambda p: p.stem)
def test_other_content_under_the_same_order_id_is_refused(store: Store, path: Path) -> None:
    first = path.read_bytes()
    name = path.stem.split("-")[0]
    if CHANGES[name][0] not in first:
        pytest.skip(f"{path.name} has no {CHANGES[name][0]!r} to change")
    run(store, first)
    run(store, resent(first, change=CHANGES[name]))
    assert len(to_sesam2(store)) == 1
    opener, duplicate = messages(store)
    assert duplicate.status == "rejected"
    assert "order.duplicate" in (duplicate.last_error or "")
    with store.sessions() as session:
        (rejection,) = session.scalars(select(OutboxRow).where(OutboxRow.message_pk == duplicate.id))
    assert rejection.exchange == Exchange.CUSTOMER_OUT.value and rejection.message_type == "Rejection"
    text = rejection.body.decode()
    assert "order.duplicate" in text and opener.message_id in text


def test_a_replay_of_the_opener_is_not_its_own_repeat(store: Store) -> None:
    first = (FIXTURES / "CustomerOrder-unit-minimal.xml").read_bytes()
    run(store, first)
    run(store, first)  # a redelivery: the message-id de-duplication, as before
    assert len(to_sesam2(store)) == 1
    assert [r.status for r in messages(store)] == ["forwarded"]


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_workers_opening_the_same_order_at_once(store: Store) -> None:
    """Two units read the order view before either commits: the orders table's primary key refuses the
    second, and its retry (what the worker does with an IntegrityError on the orders key) is a repeat."""
    first = (FIXTURES / "CustomerOrder-patient-urgent.xml").read_bytes()
    again = resent(first)
    ready = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(body: bytes) -> None:
        try:
            with UnitOfWork(store.sessions) as uow:
                Pipeline(SETTINGS).handle([delivery(body)], uow)
                ready.wait(timeout=10)
                uow.commit()
        except IntegrityError as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(b,)) for b in (first, again)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(errors) == 1 and "orders_pkey" in str(errors[0].orig)
    assert len(to_sesam2(store)) == 1
    # The worker's retry of the failed batch.
    (stored,) = messages(store)
    run(store, again if stored.message_id in first.decode() else first)
    assert len(to_sesam2(store)) == 1
    assert sorted(r.status for r in messages(store)) == ["forwarded", "repeat"]
