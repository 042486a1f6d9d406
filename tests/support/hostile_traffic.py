"""Valid traffic that keeps flowing while hostile messages arrive: a steady pika publisher of realistic
orders and a pika consumer on SESAM2's queue, each on its own connection and thread.

Latency is publish -> arrival on sesam2.in, matched by correlation id (each order has its own), so it
measures the whole path: RabbitMQ, the worker's batch, the store, the outbox and the publish.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field

import pika
import pika.exceptions

from adapters.harness.generator import Generator
from broker.contract.dialect import DIALECTS
from broker.model.codes import Side

CUSTOMER = DIALECTS[Side.CUSTOMER]


@dataclass
class Window:
    p50_ms: float
    p99_ms: float
    count: int

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms (n={self.count})"


@dataclass
class Traffic:
    amqp_url: str
    exchange: str
    queue: str  # SESAM2's queue, where every valid order arrives translated
    customer: str
    user_id: str
    rate: float = 50.0
    published: dict[str, float] = field(default_factory=dict)  # correlation id -> publish time
    arrived: dict[str, float] = field(default_factory=dict)  # every arrival on the queue, by correlation id
    bodies: dict[str, bytes] = field(default_factory=dict)
    reconnects: list[str] = field(default_factory=list)  # connections lost (another test restarting RabbitMQ)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._consume, daemon=True, name="valid-consumer"),
            threading.Thread(target=self._publish, daemon=True, name="valid-publisher"),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _publish(self) -> None:
        generator = Generator(20269, customers=(self.customer,))
        interval = 1.0 / self.rate
        while not self._stop.is_set():
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            except pika.exceptions.AMQPConnectionError as e:
                self._lost("publisher", e)
                continue
            try:
                channel = connection.channel()
                channel.confirm_delivery()
                next_at = time.monotonic()
                while not self._stop.is_set():
                    order = generator.customer_order(self.customer)
                    ref = order.header.correlation_id or order.order_id
                    props = pika.BasicProperties(
                        message_id=order.header.message_id,
                        correlation_id=ref,
                        type="CustomerOrder",
                        content_type="application/xml",
                        delivery_mode=2,
                        user_id=self.user_id,
                    )
                    at = time.time()
                    key = f"{self.customer}.CustomerOrder"
                    channel.basic_publish(self.exchange, key, CUSTOMER.render(order), props, mandatory=True)
                    with self._lock:  # counted once confirmed: an unconfirmed publish may be lost, rightly
                        self.published[ref] = at
                    next_at += interval
                    time.sleep(max(0.0, next_at - time.monotonic()))
            except pika.exceptions.AMQPError as e:
                self._lost("publisher", e)  # another test restarting RabbitMQ; go on with a new connection
            finally:
                if connection.is_open:
                    connection.close()

    def _consume(self) -> None:
        while not self._stop.is_set():
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.amqp_url))
            except pika.exceptions.AMQPConnectionError as e:
                self._lost("consumer", e)
                continue
            try:
                channel = connection.channel()

                def on_message(_ch, _method, props, body):  # type: ignore[no-untyped-def]
                    with self._lock:
                        self.arrived.setdefault(props.correlation_id or "", time.time())
                        self.bodies[props.correlation_id or ""] = body

                channel.basic_consume(self.queue, on_message, auto_ack=True)
                while not self._stop.is_set():
                    connection.process_data_events(time_limit=0.1)
            except pika.exceptions.AMQPError as e:
                self._lost("consumer", e)
            finally:
                if connection.is_open:
                    connection.close()

    def _lost(self, who: str, error: BaseException) -> None:
        self.reconnects.append(f"{who}: {error!r}")
        time.sleep(1.0)

    # ---------------------------------------------------------------- what the tests read

    def missing(self, published_before: float) -> list[str]:
        with self._lock:
            return [ref for ref, at in self.published.items() if at < published_before and ref not in self.arrived]

    def wait_all_arrived(self, published_before: float, timeout: float = 60.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while (missing := self.missing(published_before)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return missing

    def window(self, start: float, end: float) -> Window:
        """Latencies of the valid orders published between start and end (epoch seconds)."""
        with self._lock:
            latencies = sorted(
                (self.arrived[ref] - at) * 1000
                for ref, at in self.published.items()
                if start <= at < end and ref in self.arrived
            )
        if not latencies:
            return Window(0.0, 0.0, 0)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        return Window(statistics.median(latencies), p99, len(latencies))
