"""The operator console over a worker on a fake transport (tests/support/replaying.py), and the steps its
tests share: accounts, logging in as a browser does (CSRF token from the form), a parked message."""

from __future__ import annotations

import re
import time
from typing import Any

from starlette.applications import Starlette
from starlette.testclient import TestClient

from broker.model.codes import Side
from console import accounts
from console.app import Console, create_app
from console.replays import Replays
from replay.replay import Replayer
from tests.support.replaying import ORDER, Broker

PASSWORD = "correct horse battery staple"
SECRET = "a test secret, not for production"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def console_of(broker: Broker) -> Console:
    """The console on the broker's store: dry runs on its pipeline, replays through its worker."""
    offline = Replayer(broker.sessions, broker.worker.pipeline)
    return Console(broker.settings, broker.sessions, Replays(offline, lambda: broker.replayer))


def app_of(broker: Broker) -> Starlette:
    return create_app(console_of(broker), SECRET)


def client(app: Starlette) -> TestClient:
    """HTTPS, as in production: the session cookie is Secure, so a client on plain HTTP would not send it."""
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def add_person(broker: Broker, name: str, *roles: str) -> None:
    with broker.sessions() as session:
        accounts.add_person(session, name, PASSWORD, roles)
        session.commit()


def add_service(broker: Broker, name: str, *roles: str) -> str:
    with broker.sessions() as session:
        _row, token = accounts.add_service(session, name, roles)
        session.commit()
    return token


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(http: TestClient, name: str, password: str = PASSWORD) -> Any:
    """Log in through the form; the response (303 to /flow when it worked)."""
    token = csrf_of(http.get("/login").text)
    return http.post("/login", data={"name": name, "password": password, "csrf": token})


def session_csrf(http: TestClient) -> str:
    """The logged-in session's CSRF token, read from a page as a browser has it."""
    return csrf_of(http.get("/failures").text)


def parked(broker: Broker, message_id: str | None = None) -> int:
    """A customer order whose forwarding to SESAM2 failed until the outbox gave up: parked. Another
    `message_id` makes another order, under an order id of its own (the same message twice is de-duplicated,
    and the same order under another message id is a repeat)."""
    broker.transport.publish_ok = False
    body = ORDER.read_bytes()
    if message_id is not None:
        body = body.replace(b"58156064-d632-45b6-90ad-f49cc0ab6b60", message_id.encode())
        body = body.replace(b"WS-1002-2026-004817", f"WS-1002-2026-{message_id[-6:]}".encode())
    row = broker.receive(body, Side.CUSTOMER)
    broker.park_after_failed_publishes()
    broker.transport.publish_ok = True
    assert broker.row(row.id).status == "parked"
    return row.id


def wait_for_job(http: TestClient, job: int, headers: dict[str, str] | None = None, timeout: float = 20.0) -> Any:
    """The job's document once it is no longer running."""
    deadline = time.monotonic() + timeout
    while True:
        doc = http.get(f"/api/v1/jobs/{job}", headers=headers).json()
        if doc["status"] != "running" or time.monotonic() > deadline:
            return doc
        time.sleep(0.05)


def traffic(broker: Broker, count: int, seed: int = 15) -> None:
    """Generated customer messages of every kind through the worker, as their systems would send them (the
    user id RabbitMQ would have verified), so that the Flow page has something to draw."""
    from adapters.amqp.topology import Names
    from adapters.harness.envelopes import address
    from adapters.harness.generator import Generator
    from broker.envelope import Delivery
    from tests.support.fakes import Taken

    users = {c.number: c.amqp_user for c in broker.settings.customers}
    generator = Generator(seed, None, [c for c, user in users.items() if user])
    for message in generator.mix(count):
        sent = address(Side.CUSTOMER, message, Names(""))
        p = sent.properties
        delivery = Delivery(
            side=Side.CUSTOMER,
            body=sent.body,
            routing_key=sent.routing_key,
            message_id=p["message_id"],
            correlation_id=p["correlation_id"],
            message_type=p["type"],
            user_id=users.get(message.header.customer_number or ""),
            headers={str(k): str(v) for k, v in p["headers"].items()},
        )
        broker.worker.process([Taken(delivery)])


def invalid_orders() -> list[tuple[str, bytes]]:
    """Customer orders the broker rejects, each for a rule of its own (new message ids: none is a duplicate)."""
    order = ORDER.read_bytes()
    original = b"58156064-d632-45b6-90ad-f49cc0ab6b60"
    cases = [
        ("a priority outside the code list", order.replace(b"<Priority>", b"<Priority>soonish", 1)),
        ("a quantity that is not a number", order.replace(b"<Quantity>1</Quantity>", b"<Quantity>one</Quantity>", 1)),
        ("not well-formed", order.replace(b"</CustomerOrder>", b"")),
    ]
    return [(why, body.replace(original, f"0b7e3a52-2f7c-4d0e-9a43-6c1d5f0e8b2{i}".encode())) for i, (why, body) in
            enumerate(cases)]  # fmt: skip
