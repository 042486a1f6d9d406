"""The Python client (clients/python) end to end on RabbitMQ and PostgreSQL, around a running broker worker:
the customer-system example places an order and receives its confirmation from a simulated SESAM2 (the
harness's, then the client's own SESAM2 example); a Rejection comes back typed; a redelivered answer is
handled once."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest
from hmc_client import Answer, HmcClient, OrderConfirmation, Rejection, Role

from adapters.amqp.topology import Names
from adapters.amqp.transport import AmqpTransport, declare_topology, topology_settings
from adapters.catalog_file import DEMO_CATALOG
from adapters.harness import simulation, wire
from adapters.harness.sesam2_sim import Behaviour, Sesam2Simulator
from broker.bootstrap import store
from broker.config import Customer, Settings
from broker.runtime import Worker

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "clients/python/examples"
ORDER = ROOT / "tests/fixtures/customer/valid/CustomerOrder-patient-urgent.xml"
CUSTOMER = "1002"
ALWAYS_CONFIRM = Behaviour(cancel_ratio=0, confirm_ratio=1, delay_ratio=0, receipt_ratio=0)


@dataclass
class Broker:
    settings: Settings
    url: str
    prefix: str


@pytest.fixture
def broker(amqp_url: str, postgres_url: str, prefix: str, declared) -> Iterator[Broker]:  # type: ignore[no-untyped-def]
    settings = Settings(
        amqp_url=amqp_url,
        db_url=postgres_url,
        prefix=prefix,
        customers=(Customer(CUSTOMER),),
        catalog=str(DEMO_CATALOG),
        batch_wait_ms=5,
        http_port=0,
    )
    declared.add(topology_settings(settings))
    declare_topology(settings)
    worker = Worker(settings, AmqpTransport(settings), store(settings))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield Broker(settings, amqp_url, prefix)
    finally:
        worker.stop.set()
        thread.join(30)


def _harness_sesam2(b: Broker, count: int) -> threading.Thread:
    def run() -> None:
        connection = wire.connect(b.url)
        try:
            simulation.simulate(
                connection, Names(b.prefix), Sesam2Simulator(7, ALWAYS_CONFIRM), duration=60, count=count
            )
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=120)


def test_customer_example_places_an_order_confirmed_by_the_simulated_sesam2(broker: Broker) -> None:
    sesam2 = _harness_sesam2(broker, count=1)
    run = _example(
        "customer_system.py", "--url", broker.url, "--customer", CUSTOMER, "--prefix", broker.prefix,
        "--order", str(ORDER), "--timeout", "60",
    )  # fmt: skip
    sesam2.join(60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"confirmed: order EX-1002-\w+ is HMC order 41\d+", run.stdout), run.stdout
    assert "line 1: 1 x" in run.stdout


def test_both_examples_talk_through_the_broker(broker: Broker) -> None:
    common = ["--url", broker.url, "--prefix", broker.prefix]
    sesam2 = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "sesam2.py"), *common, "--count", "1", "--timeout", "60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run = _example("customer_system.py", *common, "--customer", CUSTOMER, "--order", str(ORDER))
        out, err = sesam2.communicate(timeout=60)
    finally:
        sesam2.kill()
    assert run.returncode == 0, run.stdout + run.stderr
    assert "confirmed: order" in run.stdout
    assert sesam2.returncode == 0 and "handled 1 message(s)" in out, out + err


def test_a_rejection_comes_back_typed_with_every_problem(broker: Broker) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        from customer_system import fresh  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLES))
    order, _ = fresh(ORDER.read_bytes(), CUSTOMER)
    # A patient id whose check digit is wrong: valid for the XSD, refused by the broker's identifier rules.
    order = order.replace(b"<PatientId>194503079818</PatientId>", b"<PatientId>194503079819</PatientId>")
    with HmcClient(broker.url, Role.customer(CUSTOMER), prefix=broker.prefix) as client:
        sent = client.publish(order)
        answer = client.wait_for(lambda a: isinstance(a, Rejection), timeout=30)
    assert isinstance(answer, Rejection)
    assert answer.rejected_message_id == sent.message_id and answer.rejected_type == "CustomerOrder"
    assert answer.problems and any(p.path and "PatientId" in p.path for p in answer.problems), answer.problems
    assert "194503079819" not in answer.document.root.findtext(".//{*}Message", default="")


def test_a_duplicate_is_handled_once_and_others_wait_in_the_queue(amqp_url: str, prefix: str, topology) -> None:  # type: ignore[no-untyped-def]
    topology(customers=(CUSTOMER,))
    body = (ROOT / "tests/fixtures/customer/valid/OrderConfirmation-two-lines.xml").read_bytes()
    body = _for_customer(body)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    for _ in range(2):  # the same answer twice, as a republish after a lost confirm would bring it
        channel.basic_publish(f"{prefix}hmc.customer.out", f"{CUSTOMER}.OrderConfirmation", body)
    delay = (ROOT / "tests/fixtures/customer/valid/DeliveryDelay-whole-order.xml").read_bytes()
    delay = _for_customer(delay)
    channel.basic_publish(f"{prefix}hmc.customer.out", f"{CUSTOMER}.DeliveryDelay", delay)
    connection.close()
    handled: list[Answer] = []
    with HmcClient(amqp_url, Role.customer(CUSTOMER), prefix=prefix) as client:
        first = client.wait_for(lambda a: a.type == "OrderConfirmation", timeout=5)
        client.consume(handled.append, timeout=2)
        assert client.channel().queue_declare(client.queue, passive=True).method.message_count == 0
    assert [a.type for a in handled] == ["DeliveryDelay"], "the confirmation once, its duplicate skipped"
    assert isinstance(first, OrderConfirmation)
    assert [line.line_number for line in first.lines] == [1, 2]


def _for_customer(body: bytes) -> bytes:
    """A fixture's answer addressed to this test's customer."""
    return re.sub(
        rb"<CustomerNumber>\d+</CustomerNumber>", b"<CustomerNumber>" + CUSTOMER.encode() + b"</CustomerNumber>", body
    )
