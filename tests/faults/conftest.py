"""Fixtures of the fault tests: a database and an AMQP prefix of each test's own, and a guard that leaves
RabbitMQ and PostgreSQL running after every test, whatever happened in it."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from uuid import uuid4

import pika
import pytest
from fault_services import ensure_up
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.pool import NullPool

from adapters.amqp.topology import TopologySettings, plan

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
PARTITIONS = 2


@pytest.fixture(scope="session")
def fault_amqp_url() -> str:
    # pika logs every frame at DEBUG (the test run's level): thousands of lines per second of publishing.
    logging.getLogger("pika").setLevel(logging.WARNING)
    return os.environ.get("HMC_TEST_AMQP_URL", DEFAULT_AMQP_URL)


@pytest.fixture(autouse=True)
def services_restored(fault_amqp_url: str) -> Iterator[None]:
    """Before and after each fault test: RabbitMQ and PostgreSQL up (started here if a test left one down)."""
    ensure_up(fault_amqp_url)
    yield
    started = ensure_up(fault_amqp_url)
    assert not started, f"a fault test left {started} stopped (started again by the guard)"


@pytest.fixture
def fault_db(services_restored: None) -> Iterator[str]:
    """A database of the test's own. Engines without a pool: a PostgreSQL restart leaves no dead connection."""
    server = make_url(os.environ.get("HMC_TEST_DB_URL", DEFAULT_DB_URL))
    name = f"hmc_fault_{uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def fault_prefix(fault_amqp_url: str, services_restored: None) -> Iterator[str]:
    """A prefix of the test's own; what the broker declares under it is deleted afterwards."""
    prefix = f"f{uuid4().hex[:8]}."
    yield prefix
    topology = plan(TopologySettings(prefix=prefix, partitions=PARTITIONS, customers=("1001",)))
    connection = pika.BlockingConnection(pika.URLParameters(fault_amqp_url))
    try:
        channel = connection.channel()
        for queue in sorted(q.name for q in topology.queues):
            channel.queue_delete(queue)
        for exchange in sorted(e.name for e in topology.exchanges):
            channel.exchange_delete(exchange)
    finally:
        connection.close()
