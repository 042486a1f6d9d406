"""Store operations on both stores: SQLite (embedded) and PostgreSQL (a database of this session's own).

The worker publishes through a fake transport that records what went out and can be made to fail, so
"exactly once" is counted on what the worker handed to AMQP; test_e2e_rabbitmq.py counts on RabbitMQ.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import pytest
from sqlalchemy import create_engine, make_url, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from broker.bootstrap import store
from broker.config import Customer, Settings
from broker.envelope import Delivery, Outgoing, Side
from broker.runtime import Worker
from broker.store.tables import Base, MessageRow, OutboxRow
from replay.replay import Replayer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORDER = FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml"
DEFAULT_DB_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CUSTOMERS = (
    Customer("1001", "Region Skåne", "websesam-skane", invoice=True),
    Customer("1002", "Region Halland", "websesam-halland"),
    Customer("2040", "Västerby kommun"),
)


def reachable(url: str, port: int) -> str | None:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or port), timeout=2):
            return None
    except OSError as e:
        return f"not reachable at {parts.hostname}:{parts.port or port} ({e})"


def _unavailable(reason: str) -> None:
    if os.environ.get("HMC_REQUIRE_SERVICES") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def replay_postgres_url() -> Iterator[str]:
    """A database of this session's own (as tests/integration/conftest.py makes one)."""
    url = os.environ.get("HMC_TEST_DB_URL", DEFAULT_DB_URL)
    problem = reachable(url, 5432)
    if problem:
        _unavailable(f"PostgreSQL {problem}")
    server = make_url(url)
    name = f"hmc_test_replay_{uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    url: str = request.getfixturevalue("replay_postgres_url")
    engine = create_engine(url)
    with engine.begin() as conn:  # a clean store for each test
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()
    return url


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(db_url=db_url, customers=CUSTOMERS, publish_attempts=2, wire_tap=False)


@dataclass
class Result:
    ok: bool
    error: str | None = None


@dataclass
class FakeTransport:
    """Stands in for RabbitMQ: what was published, and whether publishing works."""

    publish_ok: bool = True
    published: list[Outgoing] = field(default_factory=list)

    def receive(self, max_count: int, wait_s: float) -> Sequence[object]:
        return []

    def publish(self, batch: Sequence[Outgoing]) -> list[Result]:
        if not self.publish_ok:
            return [Result(False, "unroutable: NO_ROUTE") for _ in batch]
        self.published.extend(batch)
        return [Result(True) for _ in batch]

    def stop_consuming(self) -> None: ...

    def connected(self) -> bool:
        return True

    def partner_queues(self) -> dict[str, str]:
        return {}

    def queue_counts(self, queues: list[str]) -> dict[str, tuple[int, int] | None]:
        return {}

    def close(self) -> None: ...


@dataclass
class Taken:
    delivery: Delivery

    def ack(self) -> None: ...


@dataclass
class Broker:
    """A worker on a fake transport, and the replayer that uses it."""

    settings: Settings
    transport: FakeTransport
    worker: Worker
    sessions: sessionmaker[Session]

    @property
    def replayer(self) -> Replayer:
        return Replayer.of(self.worker)

    def receive(self, body: bytes, side: Side = Side.CUSTOMER, routing_key: str = "1002.CustomerOrder") -> MessageRow:
        self.worker.process([Taken(Delivery(side=side, body=body, routing_key=routing_key))])
        with self.sessions() as session:
            row = session.scalars(select(MessageRow).order_by(MessageRow.id.desc()).limit(1)).one()
            return row

    def park_after_failed_publishes(self) -> None:
        """Let the relay retry until the outbox gives up (publish_attempts) and parks."""
        for _ in range(self.settings.publish_attempts):
            with self.sessions() as session:
                session.execute(update(OutboxRow).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
                session.commit()
            self.worker.relay()

    def row(self, pk: int) -> MessageRow:
        with self.sessions() as session:
            row = session.get(MessageRow, pk)
            assert row is not None
            return row


@pytest.fixture
def broker(settings: Settings) -> Broker:
    transport = FakeTransport()
    sessions = store(settings)
    return Broker(settings, transport, Worker(settings, transport, sessions), sessions)  # type: ignore[arg-type]
