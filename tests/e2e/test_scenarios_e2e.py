"""Every shipped scenario end to end: `hmc-broker inject --scenario` (pika) through a running broker worker
on RabbitMQ and PostgreSQL; each customer step reaches SESAM2 and each SESAM2 step the customer, in order."""

from __future__ import annotations

import threading
import zlib

import pika
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from adapters.amqp.topology import Names
from adapters.amqp.transport import AmqpTransport, declare_topology, topology_settings
from adapters.catalog_file import DEMO_CATALOG
from adapters.harness import scenarios
from broker.bootstrap import store
from broker.cli import app
from broker.config import Customer, Settings
from broker.contract.dialect import read
from broker.contract.mapping import TYPE_MAPS
from broker.model.codes import Side
from broker.model.messages import MESSAGE_TYPES, SCHEMA_VERSIONS
from broker.runtime import Worker
from broker.store.tables import MessageRow
from tests.support.amqp import nothing_more, take

CUSTOMER = "1001"


def _version_for(name: str) -> str:
    steps = scenarios.find(name).steps
    return max((TYPE_MAPS[MESSAGE_TYPES[s.type_name]].since for s in steps), key=SCHEMA_VERSIONS.index)


@pytest.mark.parametrize("name", sorted(scenarios.shipped()))
def test_scenario_end_to_end(name: str, amqp_url: str, postgres_url: str, prefix: str, declared) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        amqp_url=amqp_url,
        db_url=postgres_url,
        prefix=prefix,
        # A scenario with a type of customer dialect 1.1 (an OrthopaedicReferralAnswer) needs a 1.1 customer.
        customers=(Customer(CUSTOMER, invoice=True, schema_version=_version_for(name)),),
        catalog=str(DEMO_CATALOG),
        batch_wait_ms=5,
        http_port=0,
    )
    declared.add(topology_settings(settings))
    declare_topology(settings)
    scenario = scenarios.find(name)
    expected = {side: [s.type_name for s in scenario.steps if s.side is side and not s.rejected] for side in Side}
    # What the customer's queue gets, in step order: SESAM2's messages, and a Rejection per refused step.
    to_customer = [
        s.type_name if s.side is Side.SESAM2 else "Rejection"
        for s in scenario.steps
        if s.side is Side.SESAM2 or s.rejected
    ]
    worker = Worker(settings, AmqpTransport(settings), store(settings))
    with worker.sessions() as session:  # the session's database holds the other scenarios' messages too
        before = session.scalar(select(func.max(MessageRow.id))) or 0
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        result = CliRunner().invoke(
            app,
            # A seed of its own: the same seed would repeat message ids, which the broker rightly drops.
            [
                "inject",
                "--scenario",
                name,
                "--count",
                "1",
                "--customers",
                CUSTOMER,
                "--seed",
                str(zlib.crc32(name.encode())),
                # A refusal that follows from an earlier step (a register update) needs that step committed
                # first: the sides have queues of their own, so the steps go out paced.
                "--rate",
                "2" if any(s.rejected for s in scenario.steps) else "0",
            ],
            env={"HMC_AMQP_URL": amqp_url, "HMC_PREFIX": prefix},
        )
        assert result.exit_code == 0, result.output
        names = Names(prefix)
        channel = pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()
        at_sesam2 = _take(channel, names.sesam2_queue, len(expected[Side.CUSTOMER]))
        replies = expected[Side.CUSTOMER].count("OrderStatusQuery")
        at_customer = _take(channel, names.customer_queue(CUSTOMER), len(to_customer) + replies)
        channel.connection.close()
    finally:
        worker.stop.set()
        thread.join(30)
    queries = expected[Side.CUSTOMER].count("OrderStatusQuery")  # answered by the broker, not SESAM2
    with worker.sessions() as session:
        mine = session.scalars(select(MessageRow).where(MessageRow.id > before))
        stored = [(r.message_type, r.status, r.last_error) for r in mine]
    assert at_sesam2 == [t for t in expected[Side.CUSTOMER] if t != "OrderStatusQuery"], stored
    assert [t for t in at_customer if t != "OrderStatusReply"] == to_customer
    assert at_customer.count("OrderStatusReply") == queries
    with worker.sessions() as session:
        query = select(MessageRow.status).where(MessageRow.received_at.isnot(None), MessageRow.id > before)
        statuses = list(session.scalars(query))
    assert set(statuses) - {"rejected"} <= {"delivered", "answered"}, stored
    assert statuses.count("rejected") == sum(s.rejected for s in scenario.steps), stored


def _take(channel, queue: str, count: int, timeout: float = 20) -> list[str]:  # type: ignore[no-untyped-def]
    """The types of `count` messages from `queue`, in order; then make sure nothing more arrives."""
    got = take(channel, queue, count, timeout)
    for _props, body in got:
        parsed = read(body)
        assert parsed.ok, parsed.problems
    assert nothing_more(channel, queue), f"more than {count} in {queue}"
    return [props.type for props, _body in got]
