"""A worker on a fake transport and the replayer that uses it, for the store operations' tests
(tests/store/test_replay.py, test_store_ops.py, test_replay_cli.py; their fixtures are in
tests/store/conftest.py).

The worker publishes through a fake transport that records what went out and can be made to fail, so
"exactly once" is counted on what the worker handed to AMQP; tests/e2e/test_replay_rabbitmq.py counts on
RabbitMQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from broker.config import Customer, Settings
from broker.envelope import Delivery
from broker.model.codes import Side
from broker.runtime import Worker
from broker.store.tables import MessageRow, OutboxRow
from replay.replay import Replayer
from tests.support.fakes import FakeTransport, Taken

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORDER = FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml"
CUSTOMERS = (
    Customer("1001", "Region Skåne", "websesam-skane", invoice=True),
    Customer("1002", "Region Halland", "websesam-halland"),
    Customer("2040", "Västerby kommun"),
)


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
