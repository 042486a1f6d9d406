"""The consuming connection's heartbeat (adapters/amqp/transport.py): short, so that a frozen worker gives up
its partitions within seconds, and sent by a thread of its own, so that a busy worker does not."""

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


def test_a_busy_worker_keeps_its_connection_and_its_messages(amqp_url: str) -> None:
    """Six seconds without a receive, at a heartbeat of 1 s (RabbitMQ closes a silent connection after about
    two): the connection stays, the acknowledgement counts, nothing is redelivered."""
    settings = Settings(amqp_url=amqp_url, prefix=f"hb{uuid4().hex[:8]}.", amqp_heartbeat_s=1)
    transport = AmqpTransport(settings)
    try:
        queue = Names(settings.prefix).inbound_queues(Side.CUSTOMER, 1)[0]
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        connection.channel().basic_publish("", queue, b"<x/>")
        connection.close()
        got = transport.receive(10, 0.02, 5.0)
        assert len(got) == 1
        consuming_on = transport.consume_connection

        time.sleep(6)  # the worker's thread is busy: a long commit, a store outage, confirms late

        transport.acknowledge(got)
        again = [m for _ in range(8) for m in transport.receive(10, 0.02, 0.25)]
        assert again == [], "the message came back: RabbitMQ had dropped the busy worker's connection"
        assert transport.consume_connection is consuming_on, "the worker had to reconnect"
        assert transport.connected()
    finally:
        transport.close()
        delete_topology(settings, force=True)
