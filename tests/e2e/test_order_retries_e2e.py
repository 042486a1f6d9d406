"""One order per order id end to end (#17): a customer system's retries under fresh MessageIds reach SESAM2
once, also with two workers whose partitions get the copies; other content under the same order id comes
back as a Rejection (order.duplicate). RabbitMQ and PostgreSQL; pika is the outside client."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pika
import pytest

from adapters.amqp.topology import Names
from adapters.amqp.transport import AmqpTransport, topology_settings
from broker.bootstrap import store as open_store
from broker.config import Customer, Settings
from broker.contract.dialect import DIALECTS, read
from broker.envelope import Exchange
from broker.model import messages as m
from broker.model.codes import Side
from broker.runtime import Worker
from tests.support.amqp import nothing_more, take
from tests.support.fixtures import Store

BASE = Path(__file__).resolve().parents[1] / "fixtures" / "customer" / "valid" / "CustomerOrder-patient-urgent.xml"
CUSTOMERS = (Customer("1001", "Region Skåne", "websesam-skane"), Customer("1002", "Region Halland", "websesam-halland"))


@pytest.fixture
def db_url(store: Store) -> str:
    return store.url


@pytest.fixture
def workers() -> Iterator[list[tuple[Worker, threading.Thread]]]:
    """Workers in threads, stopped at the end of the test."""
    started: list[tuple[Worker, threading.Thread]] = []
    yield started
    for worker, _ in started:
        worker.stop.set()
    for _, thread in started:
        thread.join(30)


def start(settings: Settings, workers: list[tuple[Worker, threading.Thread]]) -> None:
    worker = Worker(settings, AmqpTransport(settings), open_store(settings))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    workers.append((worker, thread))


def copy(base: m.CustomerOrder, order_no: int, attempt: int, quantity: int = 1) -> bytes:
    """Order `order_no` as its customer system sends it on `attempt`: a fresh id and time every time."""
    header = dataclasses.replace(
        base.header,
        message_id=str(uuid.uuid4()),
        sent_at=base.header.sent_at + timedelta(minutes=attempt),
        correlation_id=None,
    )
    line = dataclasses.replace(base.lines[0], quantity=quantity)
    message = dataclasses.replace(base, header=header, order_id=f"RETRY-{order_no:03d}", lines=[line, *base.lines[1:]])
    return DIALECTS[Side.CUSTOMER].render(message)


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)  # two workers share one store
def test_retries_under_new_ids_reach_sesam2_once_with_two_workers(
    amqp_url: str, db_url: str, prefix: str, declared, workers: list[tuple[Worker, threading.Thread]], pika_channel
) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        amqp_url=amqp_url,
        db_url=db_url,
        prefix=prefix,
        customers=CUSTOMERS,
        partitions=2,
        batch_size=10,
        batch_wait_ms=5,
    )
    declared.add(topology_settings(settings))
    names = Names(prefix)
    for index in range(2):
        start(dataclasses.replace(settings, worker_index=index, workers=2), workers)
    base = read(BASE.read_bytes()).message
    assert isinstance(base, m.CustomerOrder)
    key = f"{base.header.customer_number}.CustomerOrder"
    orders, attempts = 15, 3
    for attempt in range(attempts):
        for order_no in range(orders):
            body = copy(base, order_no, attempt)
            message = read(body).message
            assert message is not None
            # Each copy under its own AMQP correlation id: the copies of one order spread over both partitions.
            props = pika.BasicProperties(
                message_id=message.header.message_id,
                correlation_id=f"try-{attempt}-{order_no}",
                type="CustomerOrder",
                content_type="application/xml",
                delivery_mode=2,
            )
            pika_channel.basic_publish(names.exchange(Exchange.CUSTOMER_IN), key, body, props, mandatory=True)
    got = take(pika_channel, names.sesam2_queue, orders, timeout=60)
    assert len(got) == orders
    assert nothing_more(pika_channel, names.sesam2_queue, wait=3.0)
    order_ids = sorted(read(b).message.order_id for _, b in got)  # type: ignore[union-attr]
    assert order_ids == [f"RETRY-{n:03d}" for n in range(orders)]

    # Other content under an order id already sent: a Rejection naming the first message, nothing to SESAM2.
    changed = copy(base, 0, attempts, quantity=7)
    pika_channel.basic_publish(
        names.exchange(Exchange.CUSTOMER_IN),
        key,
        changed,
        pika.BasicProperties(message_id=read(changed).message.header.message_id, type="CustomerOrder"),  # type: ignore[union-attr]
        mandatory=True,
    )
    customer = base.header.customer_number or ""
    (answer,) = take(pika_channel, names.customer_queue(customer), 1, timeout=30)
    rejection = read(answer[1]).message
    assert isinstance(rejection, m.Rejection)
    assert [p.rule for p in rejection.problems] == ["order.duplicate"]
    assert nothing_more(pika_channel, names.sesam2_queue, wait=1.0)
