"""`hmc-broker demo`: the whole flow in one process, on the embedded default or on real services.

Simulated customer systems send a realistic mix of every inbound type and a few invalid messages; a
simulated SESAM2 answers (confirmations, delays, cancellations, receipts, delivery notes, work-order,
pickup and fault-report answers), broadcasts an article-register update, asks a patient's address and
sends a month's invoice data; a real broker worker sits in between. The account printed at the end is
read from the message store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from kombu.message import Message as KombuMessage
from kombu.messaging import Consumer, Producer

from adapters.amqp.connection import connect
from adapters.amqp.topology import Names, plan
from adapters.amqp.transport import declare_topology, topology_settings
from adapters.catalog_file import DEMO_CATALOG, load_catalog
from adapters.harness.envelopes import Addressed, address
from adapters.harness.generator import INBOUND_NAMES, Generator
from adapters.harness.sesam2_sim import DeliveredLine, Sesam2Simulator, delivered_lines
from broker import bootstrap
from broker.config import BufferArticle, BufferStore, Customer, Settings
from broker.contract.dialect import read
from broker.model import messages as m
from broker.model.codes import Side
from broker.runtime import Worker
from broker.store import buffer_stock, messages, orders, queries
from broker.translation import derived_id

# Two of Region Skåne's buffer stores keep a few articles under automatic replenishment.
DEMO_BUFFER_STORES = tuple(
    BufferStore(
        store_id=f"BUF-1001-0{i}",
        name=f"Buffertförråd {i}, Region Skåne",
        street=f"Förrådsvägen {i}",
        postal_code="21120",
        city="Malmö",
        orderer_hsa_id=f"SE2321000016-BUF{i}",
        orderer_name="Förrådsansvarig",
        articles=tuple(
            BufferArticle(a, safety_level=2, refill_quantity=4, article_type=t)
            for a, t in (("120606", "main-aid"), ("093303", "main-aid"), ("091218", "main-aid"))
        ),
    )
    for i in (1, 2)
)
DEMO_CUSTOMERS = (
    Customer(
        "1001",
        "Region Skåne (webSesam)",
        "websesam-skane",
        invoice=True,
        buffer_stores=DEMO_BUFFER_STORES,
        schema_version="1.1",  # the customer dialect 1.1 beside 1.0: its referrals are answered
    ),
    Customer("1002", "Region Halland (webSesam)", "websesam-halland"),
    Customer("2040", "Västerby kommun", "vasterby-kommun"),
)


@dataclass
class Account:
    """What the simulated partners saw: the demo's own view, compared with the store in the report."""

    sent: Counter[str] = field(default_factory=Counter)  # by type, both sides
    received: Counter[tuple[str, str]] = field(default_factory=Counter)  # (customer, type) on its queues
    rejections: list[tuple[str, m.Rejection]] = field(default_factory=list)  # (what was wrong, the Rejection)
    invalid_sent: dict[str, str] = field(default_factory=dict)  # message id -> what is wrong with it
    last_activity: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last_activity = time.monotonic()


class Demo:
    def __init__(self, settings: Settings, *, count: int, seed: int) -> None:
        self.settings = settings
        self.names = Names(settings.prefix)
        self.count = count
        self.seed = seed
        catalog = load_catalog(DEMO_CATALOG)
        numbers = [c.number for c in settings.customers]
        versions = {c.number: c.schema_version for c in settings.customers}
        self.generator = Generator(seed, catalog, numbers, versions=versions)
        self.sesam2 = Sesam2Simulator(seed, catalog=catalog)
        self.account = Account()
        self.delivered: dict[str, list[DeliveredLine]] = {}
        self.patients: dict[str, str] = {}  # customer -> a patient id seen in its orders
        self.connection = connect(settings)
        self.producer = Producer(self.connection.channel())
        self.started = datetime.now(UTC)  # the account covers this run only, also in a shared store

    # ---------------------------------------------------------------- the run

    def run(self, progress: Callable[[str], None] = lambda _: None) -> Worker:
        declare_topology(self.settings)
        worker = bootstrap.worker(dataclasses.replace(self.settings, catalog=str(DEMO_CATALOG)))
        thread = threading.Thread(target=worker.run, name="broker-worker", daemon=True)
        thread.start()
        self._listen()
        try:
            progress("customer systems send orders, work orders, pickups, fault reports, referrals ...")
            for name in INBOUND_NAMES:  # every type at least once, then a realistic mix
                self._send_customer(self.generator.message(name))
            for message in self.generator.mix(max(0, self.count - len(INBOUND_NAMES))):
                self._send_customer(message)
            progress("a buffer store's count falls under a safety level: the broker orders a refill from SESAM2")
            self._send_customer(under_run(DEMO_CUSTOMERS[0].number, "BUF-1001-01", "120606", self.seed))
            progress("... and a few invalid messages")
            self._send_invalid()
            self._settle(worker)
            progress("SESAM2 broadcasts the article register, asks an address, sends the month's invoice data")
            self._send_sesam2(self.sesam2.article_register_update())
            customer, patient = next(iter(self.patients.items()))
            self._send_sesam2(self.sesam2.patient_address_query(customer, patient))
            for c in self.settings.customers:
                lines = self.delivered.get(c.number, [])
                month = lines[0].delivered_on if lines and lines[0].delivered_on else date.today()
                invoice = self.sesam2.invoice_data(c.number, month.replace(day=1), lines)
                if invoice is not None:
                    self._send_sesam2(invoice)
            self._settle(worker)
        finally:
            worker.stop.set()
            thread.join(30)
            self.connection.release()
        return worker

    def _settle(self, worker: Worker, quiet_s: float = 1.0, limit_s: float = 60.0) -> None:
        """Pump the partners' queues until nothing has moved for `quiet_s`."""
        deadline = time.monotonic() + limit_s
        seen = -1
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                self.connection.drain_events(timeout=0.1)
            if worker.counters.messages != seen:
                seen = worker.counters.messages
                self.account.touch()
            if time.monotonic() - self.account.last_activity > quiet_s:
                return

    # ---------------------------------------------------------------- customers

    def _send_customer(self, message: m.Message) -> None:
        patient = getattr(message, "patient", None)
        if isinstance(patient, m.Patient) and message.header.customer_number:
            self.patients.setdefault(message.header.customer_number, patient.patient_id)
        self._publish(address(Side.CUSTOMER, message, self.names))

    def _send_invalid(self) -> None:
        order = self.generator.customer_order(DEMO_CUSTOMERS[0].number, variant="patient")
        good = address(Side.CUSTOMER, order, self.names)

        def variant(why: str, body: bytes, routing_key: str | None = None) -> None:
            new_id = derived_id(f"demo/{self.seed}", f"invalid/{why}")  # the same seed, the same ids
            props = {**good.properties, "message_id": new_id}
            body = body.replace(order.header.message_id.encode(), new_id.encode())
            self.account.invalid_sent[new_id] = why
            self._publish(
                dataclasses.replace(good, body=body, properties=props, routing_key=routing_key or good.routing_key)
            )

        pid = order.patient.patient_id if order.patient else ""
        if pid:
            bad_digit = pid[:-1] + str((int(pid[-1]) + 1) % 10)
            variant("personnummer with a wrong check digit", good.body.replace(pid.encode(), bad_digit.encode()))
        article = order.lines[0].article_number
        variant("an article that is not in the catalog", good.body.replace(f">{article}<".encode(), b">999999<", 1))
        variant("a priority outside the code list", good.body.replace(b"<Priority>", b"<Priority>soonish", 1))
        variant(
            "sent under another customer's number",
            good.body,
            routing_key=f"{DEMO_CUSTOMERS[1].number}.CustomerOrder",
        )

    def _on_customer_queue(self, customer: str) -> Callable[[Any, KombuMessage], None]:
        def handle(_body: Any, message: KombuMessage) -> None:
            self.account.touch()
            parsed = read(_raw(message))
            kind = type(parsed.message).__name__ if parsed.message else "invalid"
            self.account.received[(customer, kind)] += 1
            if isinstance(parsed.message, m.Rejection):
                why = self.account.invalid_sent.get(parsed.message.rejected_message_id or "", "?")
                self.account.rejections.append((why, parsed.message))
            if isinstance(parsed.message, m.PatientAddressQuery):  # the customer system answers
                self._send_customer(self.generator.patient_address_reply(customer, query=parsed.message))
            message.ack()

        return handle

    # ---------------------------------------------------------------- SESAM2

    def _send_sesam2(self, message: m.Message) -> None:
        self._publish(address(Side.SESAM2, message, self.names))

    def _on_sesam2_queue(self, _body: Any, message: KombuMessage) -> None:
        self.account.touch()
        parsed = read(_raw(message))
        if parsed.message is not None:
            for answer in self.sesam2.answer(parsed.message):
                if isinstance(answer, m.OrderConfirmation) and answer.header.customer_number:
                    self.delivered.setdefault(answer.header.customer_number, []).extend(delivered_lines(answer))
                self._send_sesam2(answer)
        message.ack()

    # ---------------------------------------------------------------- wire

    def _listen(self) -> None:
        topology = plan(topology_settings(self.settings))
        queues = {q.name: q for q in topology.queues}
        channel = self.connection.channel()
        Consumer(channel, [queues[self.names.sesam2_queue]], callbacks=[self._on_sesam2_queue], accept=None).consume()
        for c in self.settings.customers:
            mine = [queues[self.names.customer_queue(c.number)]]
            if c.invoice:
                mine.append(queues[self.names.invoice_queue(c.number)])
            Consumer(channel, mine, callbacks=[self._on_customer_queue(c.number)], accept=None).consume()

    def _publish(self, out: Addressed) -> None:
        self.account.sent[out.message_type] += 1
        self.producer.publish(out.body, exchange=out.exchange, routing_key=out.routing_key, **out.properties)


def _raw(message: KombuMessage) -> bytes:
    body = message.body
    return body if isinstance(body, bytes) else str(body).encode()


# ---------------------------------------------------------------- the account


@dataclass(frozen=True)
class TypeLine:
    message_type: str
    direction: str
    sent: int
    stored: int
    delivered: int
    rejected: int
    parked: int
    received_by_customers: int


def account_from_store(demo: Demo, worker: Worker) -> list[TypeLine]:
    with worker.sessions() as session:
        counts = queries.counts_since(session, demo.started)
    by_type: dict[tuple[str, str], Counter[str]] = {}
    for c in counts:
        by_type.setdefault((c.message_type, c.direction), Counter())[c.status] += c.count
    received: Counter[str] = Counter()
    for (_, kind), n in demo.account.received.items():
        received[kind] += n
    lines = []
    for (message_type, direction), statuses in sorted(by_type.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        lines.append(
            TypeLine(
                message_type,
                direction,
                demo.account.sent[message_type],
                sum(statuses.values()),
                statuses["delivered"] + statuses["answered"],
                statuses["rejected"],
                statuses["parked"],
                received[message_type],
            )
        )
    return lines


@dataclass(frozen=True)
class OrderHistory:
    customer: str
    order_id: str
    kind: str
    status: str
    sesam2_order_number: str | None
    steps: list[tuple[str, str, str]]  # (message type, status, what happened last)


def under_run(customer: str, store_id: str, article: str, seed: int) -> m.BufferStockReport:
    """A count of nothing on hand (built here, not by the seeded generator: the run's mix stays as seeded).

    Its id derives from the seed: the replenishment it causes, and SESAM2's answers to that, do too."""
    at = datetime.now(UTC).replace(microsecond=0)
    return m.BufferStockReport(
        header=m.Header(
            message_id=derived_id(f"demo/{seed}", f"under-run/{customer}/{store_id}/{article}"),
            message_type="BufferStockReport",
            sent_at=at,
            sender_system="webSesam",
            customer_number=customer,
            correlation_id=store_id,
        ),
        buffer_store_id=store_id,
        counted_at=at,
        items=[m.StockItem(article_number=article, quantity_on_hand=0)],
    )


@dataclass(frozen=True)
class Refill:
    store: str
    article: str
    on_hand_at_order: int
    safety_level: int
    quantity: int
    order_id: str
    status: str  # open / delivered / cancelled


def refills(demo: Demo, worker: Worker) -> list[Refill]:
    """The replenishment orders the broker generated in this run, read from the store."""
    with worker.sessions() as session:
        rows = buffer_stock.replenishments_since(session, demo.started)
        return [
            Refill(
                r.buffer_store_id,
                r.article_number,
                r.on_hand_at_order,
                r.safety_level,
                r.quantity,
                r.order_id,
                r.status,
            )
            for r in rows
        ]


def histories(demo: Demo, worker: Worker, limit: int = 3) -> list[OrderHistory]:
    out = []
    with worker.sessions() as session:
        for order in orders.latest(session, "CustomerOrder", demo.started, limit):
            about = messages.of_order(session, order.customer_number, order.order_id)
            last = {e.message_pk: e for e in messages.steps(session, [msg.id for msg in about])}  # by id: last wins
            steps = []
            for msg in about:
                step = last.get(msg.id)
                steps.append(
                    (
                        msg.message_type or "?",
                        msg.status,
                        f"{step.stage}: {step.detail or step.outcome}" if step else "",
                    )
                )
            out.append(
                OrderHistory(
                    order.customer_number, order.order_id, order.kind, order.status, order.sesam2_order_number, steps
                )
            )
    return out


def demo_settings(amqp_url: str, db_url: str) -> Settings:
    # On a real RabbitMQ the demo works under a prefix of its own, so it never meets production names.
    prefix = "" if amqp_url.startswith("memory://") else f"demo-{uuid.uuid4().hex[:6]}."
    return Settings(
        amqp_url=amqp_url,
        db_url=db_url,
        prefix=prefix,
        customers=DEMO_CUSTOMERS,
        batch_wait_ms=5,
        http_port=0,
        watch_interval_s=3600,
    )


def cleanup(settings: Settings) -> None:
    """Delete what the demo declared on a real RabbitMQ (its own prefix only)."""
    if settings.amqp_url.startswith("memory://") or not settings.prefix:
        return
    topology = plan(topology_settings(settings))
    with connect(settings) as connection:
        channel = connection.channel()
        for q in topology.queues:
            channel.queue_delete(q.name)
        for e in topology.exchanges:
            channel.exchange_delete(e.name)
