"""The declared topology, seen from outside with pika: routing, ordering, dead letters, idempotence."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from uuid import uuid4

import amqp.exceptions  # type: ignore[import-untyped]
import pika
import pytest
from kombu.connection import Connection
from pika.adapters.blocking_connection import BlockingChannel

from adapters.amqp.topology import Names, TopologySettings, broker_queues, declare, plan, sesam2_message_types
from broker.envelope import Exchange
from broker.model.codes import Side

services = pytest.mark.services
Topology = Callable[..., TopologySettings]


def publish(channel: BlockingChannel, exchange: str, routing_key: str, **properties: object) -> bool:
    """Publish with confirms and mandatory routing; True when some queue took the message."""
    try:
        channel.basic_publish(exchange, routing_key, b"<x/>", pika.BasicProperties(**properties), mandatory=True)
    except pika.exceptions.UnroutableError:
        return False
    return True


def take_all(channel: BlockingChannel, queue: str) -> list[tuple[pika.spec.Basic.GetOk, pika.BasicProperties]]:
    taken: list[tuple[pika.spec.Basic.GetOk, pika.BasicProperties]] = []
    while True:
        method, properties, _ = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((method, properties))


@services
@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
@pytest.mark.parametrize("partitions", [1, 3])
def test_declare_twice_is_idempotent(
    amqp_url: str, topology: Topology, pika_channel: BlockingChannel, queue_type: str, partitions: int
) -> None:
    settings = topology(queue_type=queue_type, partitions=partitions, customers=("1001",), invoice_customers=("1001",))
    with Connection(amqp_url) as connection:
        declare(connection, settings)
        declare(connection, settings)
    declared = plan(settings)
    for exchange in declared.exchanges:
        pika_channel.exchange_declare(exchange.name, passive=True)
    for queue in declared.queues:
        assert pika_channel.queue_declare(queue.name, passive=True).method.message_count == 0
    assert len(declared.broker_queues) == 2 * partitions


@services
def test_queue_type_is_applied(amqp_url: str, topology: Topology) -> None:
    # RabbitMQ refuses to redeclare a queue with another x-queue-type: proof the first one took effect.
    settings = topology(queue_type="quorum")
    with Connection(amqp_url) as connection, pytest.raises(amqp.exceptions.PreconditionFailed):
        declare(connection, TopologySettings(prefix=settings.prefix, queue_type="classic"))


@services
def test_customer_queue_receives_only_its_own_customer(topology: Topology, pika_channel: BlockingChannel) -> None:
    settings = topology(customers=("1001", "1002"))
    names = Names(settings.prefix)
    out = names.exchange(Exchange.CUSTOMER_OUT)
    sent = {
        "a": "1001.OrderConfirmation",
        "b": "1002.OrderConfirmation",
        "c": "1001.DeliveryNote",
        "d": "10011.OrderConfirmation",  # a longer customer number is another customer
    }
    routed = {mid: publish(pika_channel, out, key, message_id=mid) for mid, key in sent.items()}
    assert routed == {"a": True, "b": True, "c": True, "d": False}
    assert [p.message_id for _, p in take_all(pika_channel, names.customer_queue("1001"))] == ["a", "c"]
    assert [p.message_id for _, p in take_all(pika_channel, names.customer_queue("1002"))] == ["b"]


@services
def test_invoice_queue_receives_only_its_own_customer(topology: Topology, pika_channel: BlockingChannel) -> None:
    settings = topology(customers=("1001", "1002"), invoice_customers=("1001",))
    names = Names(settings.prefix)
    invoice = names.exchange(Exchange.INVOICE)
    assert publish(pika_channel, invoice, "1001", message_id="mine")
    assert not publish(pika_channel, invoice, "1002", message_id="no-permission")  # no invoice queue: not routed
    assert not publish(pika_channel, invoice, "1001.InvoiceData", message_id="not-a-customer-key")
    assert [p.message_id for _, p in take_all(pika_channel, names.invoice_queue("1001"))] == ["mine"]
    assert take_all(pika_channel, names.customer_queue("1001")) == []


@services
def test_sesam2_queue_receives_every_type_sesam2_is_sent(topology: Topology, pika_channel: BlockingChannel) -> None:
    settings = topology()
    names = Names(settings.prefix)
    out = names.exchange(Exchange.SESAM2_OUT)
    types = sesam2_message_types()
    assert "CustomerOrder" in types and "PatientAddressReply" in types
    for t in types:
        assert publish(pika_channel, out, t, type=t), t
    assert not publish(pika_channel, out, "OrderStatusQuery")  # a customer-side type only: SESAM2 never gets it
    assert not publish(pika_channel, out, "InvoiceData")  # an answer sent the wrong way comes back unroutable
    assert [p.type for _, p in take_all(pika_channel, names.sesam2_queue)] == list(types)


@services
def test_single_partition_has_one_active_consumer(
    amqp_url: str, topology: Topology, pika_channel: BlockingChannel
) -> None:
    settings = topology()
    names = Names(settings.prefix)
    [queue] = names.inbound_queues(Side.CUSTOMER, 1)
    connections = [pika.BlockingConnection(pika.URLParameters(amqp_url)) for _ in range(2)]
    got: dict[int, list[str]] = {0: [], 1: []}
    try:
        for worker, connection in enumerate(connections):
            connection.channel().basic_consume(
                queue, lambda _c, _m, p, _b, w=worker: got[w].append(p.message_id), auto_ack=True
            )
        ids = [f"m{i}" for i in range(20)]
        for mid in ids:
            assert publish(pika_channel, names.exchange(Exchange.CUSTOMER_IN), "1001.CustomerOrder", message_id=mid)
        deadline = time.monotonic() + 10
        while len(got[0]) + len(got[1]) < len(ids) and time.monotonic() < deadline:
            for connection in connections:
                connection.process_data_events(time_limit=0.05)
        # x-single-active-consumer: the first consumer gets everything, in order; the second waits.
        assert got == {0: ids, 1: []}
    finally:
        for connection in connections:
            connection.close()


@services
def test_each_side_reaches_its_own_inbound_queue(topology: Topology, pika_channel: BlockingChannel) -> None:
    settings = topology()
    names = Names(settings.prefix)
    assert publish(pika_channel, names.exchange(Exchange.CUSTOMER_IN), "1001.CustomerOrder", message_id="c")
    assert publish(pika_channel, names.exchange(Exchange.SESAM2_IN), "OrderConfirmation", message_id="s")
    [customer_in] = names.inbound_queues(Side.CUSTOMER, 1)
    [sesam2_in] = names.inbound_queues(Side.SESAM2, 1)
    assert [p.message_id for _, p in take_all(pika_channel, customer_in)] == ["c"]
    assert [p.message_id for _, p in take_all(pika_channel, sesam2_in)] == ["s"]
    assert [q.name for q in broker_queues(settings)] == [customer_in, sesam2_in]


@services
def test_dead_letters_are_kept(topology: Topology, pika_channel: BlockingChannel) -> None:
    settings = topology(queue_type="quorum")
    names = Names(settings.prefix)
    assert publish(pika_channel, names.exchange(Exchange.CUSTOMER_IN), "1001.CustomerOrder", message_id="poison")
    [queue] = names.inbound_queues(Side.CUSTOMER, 1)
    # A consumer, as the broker is: quorum queues refuse basic.get when single-active-consumer is on.
    method, _, _ = next(pika_channel.consume(queue, inactivity_timeout=5))
    assert method is not None
    pika_channel.basic_reject(method.delivery_tag, requeue=False)
    pika_channel.cancel()
    deadline = time.monotonic() + 5
    while not (dead := take_all(pika_channel, names.dead_letter_queue)) and time.monotonic() < deadline:
        time.sleep(0.05)
    [(_, properties)] = dead
    assert properties.message_id == "poison"
    assert properties.headers["x-death"][0]["queue"] == queue


@services
def test_partitions_keep_each_order_in_one_queue(topology: Topology, pika_channel: BlockingChannel) -> None:
    settings = topology(partitions=3)
    names = Names(settings.prefix)
    orders = [f"order-{i}" for i in range(30)]
    for n in range(300):
        order = orders[n % len(orders)]
        assert publish(
            pika_channel,
            names.exchange(Exchange.CUSTOMER_IN),
            "1001.CustomerOrder",
            message_id=f"m{n}",
            correlation_id=order,
            headers={"seq": n},
        )
    queues_of: dict[str, set[int]] = defaultdict(set)
    per_queue = []
    for index, queue in enumerate(names.inbound_queues(Side.CUSTOMER, 3)):
        taken = take_all(pika_channel, queue)
        per_queue.append(len(taken))
        seen: dict[str, list[int]] = defaultdict(list)
        for _, properties in taken:
            queues_of[properties.correlation_id].add(index)
            seen[properties.correlation_id].append(properties.headers["seq"])
        assert all(seqs == sorted(seqs) for seqs in seen.values()), "an order's messages stay in order"
    print(f"\nmessages per partition: {per_queue}")
    assert sum(per_queue) == 300
    assert sorted(queues_of) == sorted(orders)
    assert all(len(q) == 1 for q in queues_of.values()), "every order lands in exactly one partition"
    assert sum(1 for n in per_queue if n) >= 2, "different orders spread over the partitions"
    for queue in names.inbound_queues(Side.SESAM2, 3):  # the other side's partitions saw nothing
        assert take_all(pika_channel, queue) == []


def test_memory_transport_declares_one_partition_and_refuses_more() -> None:
    prefix = f"m{uuid4().hex[:8]}."
    with Connection("memory://") as connection:
        declare(connection, TopologySettings(prefix=prefix, queue_type="quorum", customers=("1001",)))
        declare(connection, TopologySettings(prefix=prefix, queue_type="quorum", customers=("1001",)))
        with pytest.raises(ValueError, match="partitions=3"):
            declare(connection, TopologySettings(prefix=prefix, partitions=3))


def test_names_are_prefixed_and_the_default_exchange_is_not() -> None:
    names = Names("test.")
    assert names.exchange(Exchange.CUSTOMER_IN) == "test.hmc.customer.in"
    assert names.exchange(Exchange.DIRECT) == ""
    assert names.sesam2_queue == "test.sesam2.in"
    assert names.customer_queue("1001") == "test.hmc.customer.1001"
    assert names.invoice_queue("1001") == "test.hmc.invoice.1001"
    assert names.inbound_queues(Side.SESAM2, 2) == ["test.hmc.broker.sesam2-in.0", "test.hmc.broker.sesam2-in.1"]
    every = [e.name for e in plan(TopologySettings(prefix="test.", partitions=2)).exchanges]
    assert all(name.startswith("test.") for name in every)


@pytest.mark.parametrize("customer", ["", "10.01", "1001#", "*"])
def test_customer_numbers_that_would_widen_a_binding_are_refused(customer: str) -> None:
    with pytest.raises(ValueError, match="customer number"):
        TopologySettings(customers=(customer,))
