"""The fixtures the tests share, a pytest plugin named in tests/conftest.py (`pytest_plugins`).

A service that is not reachable skips its tests with the command that starts it; with
HMC_REQUIRE_SERVICES=1 (CI) it fails them instead (tests/support/services.py). Every AMQP test works under a
prefix of its own and deletes what it declared, so tests neither see each other's messages nor leave queues
behind. `store` is the one store fixture: SQLite and PostgreSQL, each test on a clean one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from uuid import uuid4

import pika
import pytest
from kombu.connection import Connection
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from adapters.amqp.topology import TopologySettings, declare, plan
from adapters.harness.cleanup import delete_topology
from broker.store.messages import StepRow
from broker.store.messages import steps as stored_steps
from broker.store.tables import MessageRow
from broker.store.unit_of_work import NewMessage, UnitOfWork
from tests.support import rabbit_cluster, services
from tests.support.faults import PARTITIONS, ensure_up

STORES = ["sqlite", "postgresql"]

# ------------------------------------------------------------------------------------------------- services


@pytest.fixture(scope="session")
def amqp_url() -> str:
    return services.require_rabbitmq()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test session's own, so that runs side by side (a developer's, CI's) never meet."""
    with services.own_database(services.require_postgres(), "hmc_test_") as url:
        yield url


# ---------------------------------------------------------------------------------------------------- store


@dataclass
class Store:
    """A clean store for one test: its URL, and sessions on it migrated to the latest revision (on first use)."""

    kind: str
    url: str

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return services.migrated_sessions(self.url)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """The store, once on SQLite (a new file) and once on PostgreSQL (this session's database, emptied).

    A test that means one of them only says so with
    `@pytest.mark.parametrize("store", ["postgresql"], indirect=True)`."""
    if request.param == "sqlite":
        return Store("sqlite", f"sqlite:///{tmp_path / 'store.sqlite'}")
    url: str = request.getfixturevalue("postgres_url")
    services.empty_store(url)  # the session's database is shared by its tests
    return Store("postgresql", url)


# ----------------------------------------------------------------------------------------- AMQP names


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


# ------------------------------------------------------------------------------------- the fault tests
# Not autouse: the fault tests' modules ask for `services_restored` (pytest.mark.usefixtures).


@pytest.fixture(scope="session")
def fault_amqp_url() -> str:
    # pika logs every frame at DEBUG (the test run's level): thousands of lines per second of publishing.
    logging.getLogger("pika").setLevel(logging.WARNING)
    return services.amqp_url()


@pytest.fixture
def services_restored(fault_amqp_url: str) -> Iterator[None]:
    """Before and after each fault test: RabbitMQ and PostgreSQL up (started here if a test left one down)."""
    ensure_up(fault_amqp_url)
    yield
    started = ensure_up(fault_amqp_url)
    assert not started, f"a fault test left {started} stopped (started again by the guard)"


@pytest.fixture
def fault_db(services_restored: None) -> Iterator[str]:
    """A database of the test's own, made and dropped by an engine without a pool (services.own_database):
    a PostgreSQL restart leaves it no dead connection."""
    with services.own_database(services.db_url(), "hmc_fault_") as url:
        yield url


@pytest.fixture
def fault_prefix(fault_amqp_url: str, services_restored: None) -> Iterator[str]:
    """A prefix of the test's own; what the broker declares under it is deleted afterwards."""
    prefix = f"f{uuid4().hex[:8]}."
    yield prefix
    delete_topology(fault_amqp_url, TopologySettings(prefix=prefix, partitions=PARTITIONS, customers=("1001",)))


# --------------------------------------------------------------------------- a RabbitMQ cluster of a test's own


@pytest.fixture(scope="module")
def rabbit_cluster_nodes() -> Iterator[rabbit_cluster.Cluster]:
    """Three clustered RabbitMQ nodes of this test's own (tests/support/rabbit_cluster.py), removed afterwards.

    Skipped when rabbitmq-server cannot be run here (failed with HMC_REQUIRE_SERVICES=1)."""
    logging.getLogger("pika").setLevel(logging.WARNING)
    cluster = contextlib.ExitStack()
    with cluster:
        try:
            nodes = cluster.enter_context(rabbit_cluster.running_cluster())
        except rabbit_cluster.ClusterUnavailable as e:
            services.skip_or_fail(f"no RabbitMQ cluster of the test's own: {e}")
        yield nodes


def every_step(session: Session) -> list[StepRow]:
    """Every processing step in the store, in the order they happened (what `messages show` reads)."""
    return stored_steps(session, session.scalars(select(MessageRow.id)))


def new_message(uow: UnitOfWork, message_id: str, status: str = "forwarded") -> NewMessage:
    """A customer order's message row made in `uow` (inserted at its commit), for the repositories' tests."""
    return uow.add_message(
        message_id=message_id,
        direction="inbound",
        message_type="CustomerOrder",
        customer_number="1001",
        correlation_id="ORD-1",
        order_ref="ORD-1",
        patient_ref=None,
        status=status,
        payload=b"<x/>",
        properties={},
        replay_of=None,
    )
