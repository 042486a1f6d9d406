"""What the worker's transport makes of a message taken from RabbitMQ: the properties the pipeline and the
metrics read, the publisher's AMQP timestamp among them."""

from __future__ import annotations

import time
from uuid import uuid4

import pika
import pytest

from adapters.amqp.topology import Names
from adapters.amqp.transport import AmqpTransport, delete_topology
from broker.config import Settings
from broker.model.codes import Side

pytestmark = pytest.mark.services


def test_a_delivery_carries_its_properties_and_the_time_its_publisher_stamped(amqp_url: str) -> None:
    settings = Settings(amqp_url=amqp_url, prefix=f"td{uuid4().hex[:8]}.")
    transport = AmqpTransport(settings)
    try:
        queue = Names(settings.prefix).inbound_queues(Side.CUSTOMER, 1)[0]
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        stamped = pika.BasicProperties(
            message_id="m-1", correlation_id="ORD-1", type="CustomerOrder", timestamp=1_765_000_000
        )
        channel.basic_publish("", queue, b"<x/>", stamped)
        channel.basic_publish("", queue, b"<y/>", pika.BasicProperties(message_id="m-2"))
        connection.close()
        got = [t.delivery for _ in range(4) for t in transport.receive(10, 0.05, 2.0)]
        assert [(d.message_id, d.correlation_id, d.message_type, d.side) for d in got] == [
            ("m-1", "ORD-1", "CustomerOrder", Side.CUSTOMER),
            ("m-2", None, None, Side.CUSTOMER),
        ]
        assert got[0].published_at == 1_765_000_000.0
        assert got[1].published_at is None, "no timestamp set: no wait to tell"
    finally:
        transport.close()
        delete_topology(settings, force=True)


def test_a_batch_takes_every_message_already_arrived_even_without_a_wait(amqp_url: str) -> None:
    """HMC_BATCH_WAIT_MS=0 waits for nothing more, but what is already in hand joins the batch: under load batches
    fill by themselves. (Taking one message per batch there made a worker fall behind at 200 msg/s.)"""
    settings = Settings(amqp_url=amqp_url, prefix=f"td{uuid4().hex[:8]}.", batch_size=100)
    transport = AmqpTransport(settings)
    try:
        queue = Names(settings.prefix).inbound_queues(Side.CUSTOMER, 1)[0]
        assert transport.receive(100, 0.0, 0.1) == []  # consuming, and idle: nothing there yet
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        for n in range(40):
            channel.basic_publish("", queue, b"<x/>", pika.BasicProperties(message_id=f"m-{n}"))
        connection.close()
        time.sleep(0.5)  # within the prefetch (200): all 40 are in the consumer's socket by now
        batch = transport.receive(100, 0.0, 2.0)
        assert [t.delivery.message_id for t in batch] == [f"m-{n}" for n in range(40)]
        assert transport.receive(100, 0.0, 0.05) == []  # nothing left: an idle wait, then an empty batch
        transport.acknowledge(batch)
    finally:
        transport.close()
        delete_topology(settings, force=True)
