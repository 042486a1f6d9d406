"""Fixtures of the fault tests: a database and an AMQP prefix of each test's own, and a guard that leaves
RabbitMQ and PostgreSQL running after every test, whatever happened in it."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from uuid import uuid4

import pytest
from fault_services import PARTITIONS, ensure_up

from adapters.amqp.topology import TopologySettings
from adapters.harness.cleanup import delete_topology
from tests import services


@pytest.fixture(scope="session")
def fault_amqp_url() -> str:
    # pika logs every frame at DEBUG (the test run's level): thousands of lines per second of publishing.
    logging.getLogger("pika").setLevel(logging.WARNING)
    return services.amqp_url()


@pytest.fixture(autouse=True)
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
