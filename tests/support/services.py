"""The machine's RabbitMQ and PostgreSQL for the tests: where they are, whether they answer, databases of a
session's (or a test's) own, and stores emptied between tests.

A service that is not reachable skips the test that needs it, with the command that starts it; with
HMC_REQUIRE_SERVICES=1 (CI) it fails the test instead. HMC_TEST_AMQP_URL and HMC_TEST_DB_URL point the tests
elsewhere.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import NoReturn
from uuid import uuid4

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from adapters.bench.run import reachable
from broker.store.db import make_engine, sessions, upgrade
from broker.store.tables import Base

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
DEFAULT_DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START_RABBITMQ = "rabbitmq-server -detached"
START_POSTGRES = 'pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start'


def amqp_url() -> str:
    """RabbitMQ's URL for the tests (not checked)."""
    return os.environ.get("HMC_TEST_AMQP_URL", DEFAULT_AMQP_URL)


def db_url() -> str:
    """The PostgreSQL server's URL for the tests (not checked); its database is only the one to connect to."""
    return os.environ.get("HMC_TEST_DB_URL", DEFAULT_DB_URL)


def require(service: str, url: str, default_port: int, how_to_start: str) -> str:
    """`url` when its host accepts a TCP connection; otherwise skip the test (fail it with HMC_REQUIRE_SERVICES=1)."""
    problem = reachable(url, default_port)
    if problem is None:
        return url
    skip_or_fail(f"{service} not reachable: {problem}: start it with {how_to_start}")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for want of a service; fail it instead under HMC_REQUIRE_SERVICES=1 (CI)."""
    if os.environ.get("HMC_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


def require_rabbitmq(url: str | None = None) -> str:
    """RabbitMQ's URL (amqp_url() by default) when it is reachable; else skip (or fail, see require)."""
    return require("RabbitMQ", url or amqp_url(), 5672, START_RABBITMQ)


def require_postgres(url: str | None = None) -> str:
    """PostgreSQL's URL (db_url() by default) when it is reachable; else skip (or fail, see require)."""
    return require("PostgreSQL", url or db_url(), 5432, START_POSTGRES)


@contextlib.contextmanager
def own_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database `<prefix><10 hex digits>` on the server of `server_url`, dropped (WITH FORCE) afterwards.

    Yields its URL. The admin engine has no pool: it holds no connection between the two statements, and a
    PostgreSQL restart in between (the fault tests) leaves it no dead one."""
    server = make_url(server_url)
    name = f"{prefix}{uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def empty_store(url: str) -> None:
    """Drop the store's tables and alembic's version: a session's database is shared by its tests."""
    engine = create_engine(url)
    with engine.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def migrated_sessions(url: str) -> sessionmaker[Session]:
    """Sessions on the store at `url`, migrated to the latest revision first."""
    engine = make_engine(url)
    upgrade(engine)
    return sessions(engine)
