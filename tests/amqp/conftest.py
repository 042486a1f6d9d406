"""Fixtures for the harness's tests on RabbitMQ (test_harness_cli.py): a topology of the test's own under a
unique prefix, and test queues bound with pika; everything declared is deleted afterwards. The machine's
RabbitMQ (`amqp_url`) and the other shared fixtures are in tests/support/fixtures.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import uuid4

import pika
import pytest
from kombu.connection import Connection
from pika.adapters.blocking_connection import BlockingChannel

from adapters.amqp.topology import Names, TopologySettings, declare, plan

CUSTOMERS = ("1001", "1002")


@pytest.fixture
def names(amqp_url: str) -> Iterator[Names]:
    """The broker's topology declared under a prefix of this test's own, deleted afterwards with the
    test queues that `bind` adds."""
    prefix = f"th{uuid4().hex[:8]}."
    settings = TopologySettings(prefix=prefix, customers=CUSTOMERS)
    with Connection(amqp_url) as connection:
        declare(connection, settings)
    yield Names(prefix)
    topology = plan(settings)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for queue in sorted({q.name for q in topology.queues} | {f"{prefix}test.{s}" for s in ("customer", "sesam2")}):
            assert queue.startswith(prefix)
            channel.queue_delete(queue)
        for exchange in sorted(e.name for e in topology.exchanges):
            assert exchange.startswith(prefix)
            channel.exchange_delete(exchange)
    finally:
        connection.close()


@pytest.fixture
def channel(amqp_url: str) -> Iterator[BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    yield connection.channel()
    if connection.is_open:
        connection.close()


@pytest.fixture
def bind(names: Names, channel: BlockingChannel) -> Callable[[str, str], str]:
    """bind(side, exchange): a test queue `<prefix>test.<side>` taking everything the exchange routes ("#")."""

    def make(side: str, exchange: str) -> str:
        queue = f"{names.prefix}test.{side}"
        channel.queue_declare(queue, durable=False, auto_delete=False)
        channel.queue_bind(queue, exchange, routing_key="#")
        return queue

    return make
