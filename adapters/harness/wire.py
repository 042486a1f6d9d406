"""The harness's AMQP wire, with pika: the independent client, so that it proves the contract from outside
rather than trusting the broker's own kombu code (DESIGN.md section 6).

Everything pika-specific of the harness is here: the contract's properties (envelopes.py) as
BasicProperties, a publisher with confirms and `mandatory`, and a small manual-ack consumer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

from adapters.harness import envelopes
from adapters.harness.envelopes import Addressed
from broker.config import safe_url
from broker.model.messages import Message


class WireError(RuntimeError):
    """RabbitMQ refused or lost something; the message says what to do about it."""


class Nacked(WireError):
    """RabbitMQ did not take the message (a nack: e.g. the node is stopping); publishing it again is right."""


# What publishing or consuming may raise: ours, and pika's for a lost connection or channel (so that
# callers need not import pika).
FAILURES: tuple[type[Exception], ...] = (WireError, pika.exceptions.AMQPError)


def properties(message: Message, *, user_id: str | None = None) -> Any:
    """pika.BasicProperties of the contract (README, "AMQP contract") for `message`."""
    # user_id: RabbitMQ checks it is the connection's user; the broker maps it to the customer it owns.
    return pika.BasicProperties(**envelopes.properties(message), user_id=user_id)


def blocking(url: str) -> pika.BlockingConnection:
    """A pika BlockingConnection to the first node of `url` that answers (a cluster's nodes `;`-separated, as
    HMC_AMQP_URL names them)."""
    return pika.BlockingConnection([pika.URLParameters(u) for u in url.split(";") if u.strip()])


def connect(url: str) -> Any:
    """A pika BlockingConnection, or a WireError that names the server."""
    try:
        return blocking(url)
    except pika.exceptions.AMQPError as e:
        raise WireError(f"cannot connect to {safe_url(url)}: {e!r}") from None


class Publisher:
    """Publishes with `mandatory` and waits for each publisher confirm: returns only once RabbitMQ has it."""

    def __init__(self, connection: Any) -> None:
        self.channel = connection.channel()
        self.channel.confirm_delivery()

    def publish(self, e: Addressed, *, user_id: str | None = None) -> None:
        props = pika.BasicProperties(**e.properties, user_id=user_id)
        try:
            self.channel.basic_publish(e.exchange, e.routing_key, e.body, props, mandatory=True)
        except pika.exceptions.UnroutableError:
            raise WireError(
                f"{e.message_type} to {e.exchange} with routing key {e.routing_key} was unroutable: no queue is bound"
                " (is the broker's topology declared? hmc-broker topology)"
            ) from None
        except pika.exceptions.NackError:
            raise Nacked(f"RabbitMQ refused (nacked) {e.message_type} to {e.exchange}") from None
        except pika.exceptions.ChannelClosedByBroker as closed:
            hint = " (declare the topology first: hmc-broker topology)" if closed.reply_code == 404 else ""
            raise WireError(f"RabbitMQ closed the channel: {closed.reply_text}{hint}") from None


@dataclass(frozen=True)
class Received:
    tag: int
    body: bytes
    routing_key: str
    redelivered: bool
    at: float  # time.monotonic() when it arrived


class Consumer:
    """A manual-ack consumer that can be stopped and started again (SESAM2 going down and coming back)."""

    def __init__(self, connection: Any, queue: str, prefetch: int = 50) -> None:
        self.connection, self.queue = connection, queue
        self.channel = connection.channel()
        self.channel.basic_qos(prefetch_count=prefetch)
        self._tag: str | None = None
        self._arrived: list[Received] = []

    @property
    def consuming(self) -> bool:
        return self._tag is not None

    @property
    def open(self) -> bool:
        return bool(self.channel.is_open)

    def start(self) -> None:
        try:
            self._tag = self.channel.basic_consume(self.queue, self._on_message)
        except pika.exceptions.ChannelClosedByBroker as closed:
            raise WireError(f"cannot consume {self.queue}: {closed.reply_text} (hmc-broker topology)") from None

    def stop(self) -> None:
        """Cancel the consumer; pika hands back what it had not yet passed to us, RabbitMQ requeues it."""
        if self._tag is not None and self.open:
            self.channel.basic_cancel(self._tag)
        self._tag = None

    def poll(self, seconds: float) -> list[Received]:
        """What arrived within `seconds` (also keeps the connection alive when not consuming)."""
        self.connection.process_data_events(time_limit=max(seconds, 0))
        arrived, self._arrived = self._arrived, []
        return arrived

    def ack(self, tag: int) -> None:
        self.channel.basic_ack(tag)

    def requeue(self, tag: int) -> None:
        self.channel.basic_nack(tag, requeue=True)

    def _on_message(self, _channel: Any, method: Any, _properties: Any, body: bytes) -> None:
        self._arrived.append(
            Received(method.delivery_tag, body, method.routing_key, method.redelivered, time.monotonic())
        )
