"""Fixtures for tests against the machine's RabbitMQ and PostgreSQL.

A service that is not reachable skips its tests with the command that starts it; with
HMC_REQUIRE_SERVICES=1 (CI) it fails them instead (tests/services.py). Every AMQP test works under a prefix
of its own and deletes what it declared, so tests neither see each other's messages nor leave queues behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from uuid import uuid4

import pika
import pytest
from kombu.connection import Connection

from adapters.amqp.topology import TopologySettings, declare, plan
from tests import services


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return services.require_rabbitmq()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test session's own, so that runs side by side (a developer's, CI's) never meet."""
    with services.own_database(services.require_postgres(), "hmc_test_") as url:
        yield url


@dataclass
class Declared:
    """Names a test declared on RabbitMQ, deleted when it ends (all under the test's prefix)."""

    prefix: str
    exchanges: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)

    def add(self, settings: TopologySettings) -> TopologySettings:
        topology = plan(settings)
        self.exchanges.update(e.name for e in topology.exchanges)
        self.queues.update(q.name for q in topology.queues)
        return settings


@pytest.fixture
def declared(amqp_url: str) -> Iterator[Declared]:
    registry = Declared(prefix=f"t{uuid4().hex[:8]}.")
    registry.add(TopologySettings(prefix=registry.prefix))
    yield registry
    names = registry.queues | registry.exchanges
    foreign = [n for n in names if not n.startswith(registry.prefix)]
    assert not foreign, f"refusing to delete names outside the test prefix: {foreign}"
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        # Deleting what does not exist is not an error in RabbitMQ: the superset is simply deleted.
        for queue in sorted(registry.queues):
            channel.queue_delete(queue)
        for exchange in sorted(registry.exchanges):
            channel.exchange_delete(exchange)
    finally:
        connection.close()


@pytest.fixture
def prefix(declared: Declared) -> str:
    """A unique prefix per test; what the test declares under it is deleted afterwards."""
    return declared.prefix


@pytest.fixture
def topology(amqp_url: str, declared: Declared) -> Callable[..., TopologySettings]:
    """Declare the topology under the test's prefix with the given settings (and delete it afterwards)."""

    def make(**settings: object) -> TopologySettings:
        chosen = declared.add(TopologySettings(prefix=declared.prefix, **settings))  # type: ignore[arg-type]
        with Connection(amqp_url) as connection:
            declare(connection, chosen)
        return chosen

    return make


@pytest.fixture
def pika_channel(amqp_url: str) -> Iterator[pika.adapters.blocking_connection.BlockingChannel]:
    """The independent client: a pika channel in confirm mode, so that its publishes are settled."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    yield channel
    if connection.is_open:
        connection.close()
