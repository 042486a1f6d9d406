"""End to end on the machine's RabbitMQ: a message parked because SESAM2's queue was gone is replayed
with `hmc-broker replay` once the queue is back, and reaches SESAM2 exactly once. pika reads sesam2.in,
as SESAM2 would; nothing of the broker's own AMQP code checks the broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from uuid import uuid4

import pika
import pytest
import typer
from typer.testing import CliRunner

from adapters.amqp.topology import Names
from adapters.amqp.transport import AmqpTransport, declare_topology, topology_settings
from adapters.harness.cleanup import delete_topology
from broker.bootstrap import store as open_store
from broker.config import Settings
from broker.contract.dialect import DIALECTS, read
from broker.envelope import Delivery
from broker.model.codes import Side
from broker.runtime import Worker
from broker.store.tables import MessageRow
from broker.translation import derived_id
from replay.cli import register
from tests.support import services
from tests.support.fakes import Taken
from tests.support.fixtures import Store
from tests.support.replaying import CUSTOMERS, ORDER

AMQP_URL = services.amqp_url()


@pytest.fixture
def settings(store: Store) -> Iterator[Settings]:
    services.require_rabbitmq(AMQP_URL)
    chosen = Settings(
        amqp_url=AMQP_URL, db_url=store.url, prefix=f"t{uuid4().hex[:8]}.", customers=CUSTOMERS, publish_attempts=1
    )
    yield chosen
    delete_topology(AMQP_URL, topology_settings(chosen))


def test_a_parked_message_is_replayed_to_sesam2_exactly_once(settings: Settings) -> None:
    names = Names(settings.prefix)
    declare_topology(settings)
    channel = pika.BlockingConnection(pika.URLParameters(AMQP_URL)).channel()
    channel.queue_delete(names.sesam2_queue)  # the fault: SESAM2's queue is gone, publishes come back unroutable

    worker = Worker(settings, AmqpTransport(settings, declare_topology=False), open_store(settings))
    worker.process([Taken(Delivery(side=Side.CUSTOMER, body=ORDER.read_bytes(), routing_key="1002.CustomerOrder"))])
    worker.transport.close()
    with worker.sessions() as session:
        (row,) = session.query(MessageRow).all()
    assert row.status == "parked" and "unroutable" in (row.last_error or ""), row.last_error

    app = typer.Typer()
    register(app)
    env = {
        "HMC_AMQP_URL": settings.amqp_url,
        "HMC_DB_URL": settings.db_url,
        "HMC_PREFIX": settings.prefix,
        "HMC_CUSTOMERS": "1001::websesam-skane:invoice,1002::websesam-halland,2040",
    }
    command = ["replay", str(row.id), "--operator", "anna.k", "--reason", "INC-4711 sesam2.in restored"]
    # The fault is gone: the replay's worker declares the topology at start, as every worker does.
    result = CliRunner().invoke(app, command, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "delivered" in result.output

    got = _take(channel, names.sesam2_queue)
    assert len(got) == 1
    props, body = got[0]
    order = read(ORDER.read_bytes()).message
    assert order is not None
    assert props.message_id == derived_id(order.header.message_id, "translated")
    parsed = read(body)
    assert parsed.ok and parsed.dialect is DIALECTS[Side.SESAM2]

    again = CliRunner().invoke(app, command, env=env, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "skipped" in again.output
    assert _take(channel, names.sesam2_queue, wait=1.0) == [], "no second copy"
    channel.connection.close()


def _take(channel, queue: str, wait: float = 10.0) -> list[tuple[pika.BasicProperties, bytes]]:  # type: ignore[no-untyped-def]
    got: list[tuple[pika.BasicProperties, bytes]] = []
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            if got:
                time.sleep(0.3)  # a straggler would show up now
                method, props, body = channel.basic_get(queue, auto_ack=True)
                if method is None:
                    break
            else:
                time.sleep(0.05)
                continue
        got.append((props, body))
    return got
