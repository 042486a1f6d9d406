"""The least-privilege users of compose/ hold on the real RabbitMQ.

compose/rabbitmq/make_definitions.py generates the users and permissions for a vhost of this test's own;
RabbitMQ imports them (management API, POST /api/definitions); the broker's user declares the topology
as a worker would; then each customer system tries what it must not do. The service users (hmc-admin,
hmc-broker, sesam2) are global on a RabbitMQ, so on this shared one they get the test's prefix; the vhost
and every user are deleted afterwards, also when a check fails.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pika
import pika.exceptions
import pytest

from adapters.amqp.topology import Names
from adapters.amqp.transport import declare_topology
from broker.config import Customer, Settings
from broker.envelope import Exchange

pytestmark = [pytest.mark.hostile, pytest.mark.services]

ROOT = Path(__file__).resolve().parents[2]
API = os.environ.get("HMC_TEST_RABBITMQ_API", "http://127.0.0.1:15672/api")
A, B = "1001", "1002"  # A may receive invoice data, B not


def _make_definitions() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_definitions", ROOT / "compose/rabbitmq/make_definitions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@dataclass
class Vhost:
    name: str
    host: str
    port: int
    users: dict[str, str]  # role -> user name
    passwords: dict[str, str]  # user name -> password

    def connect(self, role: str) -> pika.BlockingConnection:
        user = self.users[role]
        credentials = pika.PlainCredentials(user, self.passwords[user])
        return pika.BlockingConnection(pika.ConnectionParameters(self.host, self.port, self.name, credentials))

    def url(self, role: str) -> str:
        user = self.users[role]
        return f"amqp://{user}:{self.passwords[user]}@{self.host}:{self.port}/{urllib.parse.quote(self.name, safe='')}"


def _api(amqp_url: str) -> Callable[..., Any]:
    parts = urllib.parse.urlsplit(amqp_url)
    auth = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()

    def call(method: str, path: str, body: object = None) -> Any:
        request = urllib.request.Request(
            f"{API}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    return call


@pytest.fixture(scope="module")
def vhost(amqp_url: str) -> Iterator[Vhost]:
    api = _api(amqp_url)
    try:
        api("GET", "/overview")
    except (urllib.error.URLError, OSError) as e:
        if os.environ.get("HMC_REQUIRE_SERVICES") == "1":
            pytest.fail(f"RabbitMQ management API not reachable at {API}: {e}")
        pytest.skip(f"RabbitMQ management API not reachable at {API}: {e}")
    md = _make_definitions()
    tag = f"t{uuid.uuid4().hex[:8]}"
    name = f"hmc-test-{tag}"
    config = {
        "customers": [
            {"number": A, "amqp_user": f"{tag}-websesam-a", "invoice": True},
            {"number": B, "amqp_user": f"{tag}-websesam-b", "invoice": False},
        ]
    }
    service = {md.ADMIN_USER: "admin", md.BROKER_USER: "broker", md.SESAM2_USER: "sesam2"}
    users = [*service, *(c["amqp_user"] for c in config["customers"])]
    passwords = {u: uuid.uuid4().hex for u in users}
    definitions = md.build(config, {md.password_variable(u): p for u, p in passwords.items()}, vhost=name)
    renamed = {u: f"{tag}-{u}" for u in service}  # global names on a shared RabbitMQ: make them the test's own
    for entry in definitions["users"]:
        entry["name"] = renamed.get(entry["name"], entry["name"])
    for entry in definitions["permissions"] + definitions["topic_permissions"]:
        entry["user"] = renamed.get(entry["user"], entry["user"])
    roles = {role: renamed[u] for u, role in service.items()}
    roles.update({"A": config["customers"][0]["amqp_user"], "B": config["customers"][1]["amqp_user"]})
    parts = urllib.parse.urlsplit(amqp_url)
    created = Vhost(
        name,
        parts.hostname or "127.0.0.1",
        parts.port or 5672,
        roles,
        {renamed.get(u, u): p for u, p in passwords.items()},
    )
    try:
        api("POST", "/definitions", definitions)
        customers = (Customer(A, amqp_user=roles["A"], invoice=True), Customer(B, amqp_user=roles["B"]))
        declare_topology(Settings(amqp_url=created.url("broker"), customers=customers))  # as a worker does
        yield created
    finally:
        for path in [f"/vhosts/{urllib.parse.quote(name, safe='')}"] + [f"/users/{u}" for u in roles.values()]:
            try:
                api("DELETE", path)
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise


def _refused(vhost: Vhost, role: str, action: Callable[[Any], object]) -> str:
    """Run `action` on a fresh channel of `role`; the text of RabbitMQ's refusal, or '' if it went through."""
    connection = vhost.connect(role)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        try:
            action(channel)
        except pika.exceptions.ChannelClosedByBroker as e:
            return f"{e.reply_code} {e.reply_text}"
        return ""
    finally:
        if connection.is_open:
            connection.close()


def _publish(routing_key: str, names: Names) -> Callable[[Any], object]:
    def publish(channel: Any) -> None:
        properties = pika.BasicProperties(content_type="application/xml", delivery_mode=2)
        channel.basic_publish(names.exchange(Exchange.CUSTOMER_IN), routing_key, b"<x/>", properties)

    return publish


NAMES = Names("")


def test_a_customer_cannot_read_another_customers_queue(vhost: Vhost) -> None:
    other = NAMES.customer_queue(B)
    refusal = _refused(vhost, "A", lambda ch: ch.basic_get(other, auto_ack=False))
    assert refusal.startswith("403 ACCESS_REFUSED") and other in refusal
    refusal = _refused(vhost, "A", lambda ch: ch.basic_consume(other, lambda *a: None))
    assert refusal.startswith("403 ACCESS_REFUSED")
    assert _refused(vhost, "B", lambda ch: ch.basic_get(NAMES.customer_queue(A), auto_ack=False)).startswith("403")


def test_a_customer_reads_its_own_queue(vhost: Vhost) -> None:
    assert _refused(vhost, "A", lambda ch: ch.basic_get(NAMES.customer_queue(A), auto_ack=False)) == ""
    assert _refused(vhost, "B", lambda ch: ch.basic_get(NAMES.customer_queue(B), auto_ack=False)) == ""


def test_a_customer_publishes_only_with_its_own_routing_keys(vhost: Vhost) -> None:
    assert _refused(vhost, "A", _publish(f"{A}.CustomerOrder", NAMES)) == ""
    refusal = _refused(vhost, "A", _publish(f"{B}.CustomerOrder", NAMES))
    assert refusal.startswith("403 ACCESS_REFUSED") and f"{B}.CustomerOrder" in refusal  # topic permission
    assert _refused(vhost, "A", _publish(f"{A}0.CustomerOrder", NAMES)).startswith("403"), "not a longer number"
    refusal = _refused(
        vhost, "A", lambda ch: ch.basic_publish(NAMES.exchange(Exchange.SESAM2_IN), "OrderConfirmation", b"<x/>")
    )
    assert refusal.startswith("403"), "only hmc.customer.in"


def test_invoice_data_is_readable_only_with_invoice_permission(vhost: Vhost) -> None:
    invoices_a = NAMES.invoice_queue(A)
    assert _refused(vhost, "A", lambda ch: ch.basic_get(invoices_a, auto_ack=False)) == ""
    assert _refused(vhost, "B", lambda ch: ch.basic_get(invoices_a, auto_ack=False)).startswith("403")
    # Nor may a customer system bind a queue of its own to the invoice exchange to read others' invoices:
    # it declares nothing (configure ^$), and reads no exchange.
    invoice_exchange = NAMES.exchange(Exchange.INVOICE)
    refusal = _refused(vhost, "A", lambda ch: ch.queue_bind(NAMES.customer_queue(A), invoice_exchange, "#"))
    assert refusal.startswith("403")
    assert _refused(vhost, "B", lambda ch: ch.queue_declare("", exclusive=True)).startswith("403")
    assert _refused(vhost, "sesam2", lambda ch: ch.basic_get(invoices_a, auto_ack=False)).startswith("403")


def test_the_partners_queues_dead_letter_by_the_imported_policy(vhost: Vhost, amqp_url: str) -> None:
    """RabbitMQ applies the definitions' policy to the partners' queues (on 4.x a quorum queue drops a message
    after 20 deliveries unless it dead-letters it), and leaves the broker's inbound queues to their arguments."""
    api, quoted = _api(amqp_url), urllib.parse.quote(vhost.name, safe="")

    def policies() -> dict[str, str | None]:
        queues = api("GET", f"/queues/{quoted}?columns=name,policy")
        return {q["name"]: q.get("policy") for q in queues}

    partners = {"sesam2.in", f"hmc.customer.{A}", f"hmc.customer.{B}", f"hmc.invoice.{A}"}
    deadline = time.monotonic() + 15  # the management API shows a queue's policy at its next stats round
    while {n for n, p in policies().items() if p} != partners and time.monotonic() < deadline:
        time.sleep(0.5)
    applied = policies()
    assert {n for n, p in applied.items() if p == "hmc-partner-dead-letter"} == partners, applied
    inbound = api("GET", f"/queues/{quoted}/{urllib.parse.quote('hmc.broker.customer-in.0', safe='')}")
    assert inbound["arguments"]["x-dead-letter-exchange"] == "hmc.dlx"
