"""Publish to and consume from HMC Broker as a customer system or as SESAM2, by the contract's rules.

Publishing: the message is validated against its XSD first; it goes out with every property the contract asks
for (message_id, correlation_id, type, user_id, content_type, timestamp, persistent, x-schema-version), with
`mandatory` (an unroutable message is an error, not a silent loss) and publisher confirms. A nack or a lost
connection republishes the same message under the same message_id (the broker de-duplicates on it), up to
`attempts` times with a growing pause.

Consuming: one's own queue, acknowledged after the handler returns (a crash redelivers), each message_id
handled once (a redelivery or a republished answer is acknowledged and skipped).
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Protocol

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from hmc_client.contract import Contract, Document, InvalidMessage, Problem
from hmc_client.messages import Answer, parse

CONTENT_TYPE = "application/xml"
SCHEMA_VERSION_HEADER = "x-schema-version"
PERSISTENT = 2
# What a lost connection or channel looks like in pika: republish on a new connection.
CONNECTION_LOST: tuple[type[Exception], ...] = (
    pika.exceptions.AMQPConnectionError,
    pika.exceptions.AMQPChannelError,
    pika.exceptions.StreamLostError,
    ConnectionError,
)


class Unroutable(RuntimeError):
    """RabbitMQ returned a mandatory message: no queue is bound for its routing key (a contract error)."""


class NotConfirmed(RuntimeError):
    """The message was nacked or the connection lost on every attempt."""


@dataclass(frozen=True)
class Tls:
    """amqps with a client certificate: the certificate's common name is the RabbitMQ user (EXTERNAL)."""

    ca_file: str
    cert_file: str | None = None
    key_file: str | None = None
    server_hostname: str | None = None  # default: the URL's host


@dataclass(frozen=True)
class Role:
    """Who this client is: which dialect it writes, where it publishes and which queue it consumes."""

    dialect: str
    publishes: str  # an operation of the AsyncAPI document
    consumes: str
    customer_number: str | None = None

    @classmethod
    def customer(cls, customer_number: str) -> Role:
        return cls("customer", "customerSystemPublishes", "customerSystemConsumes", customer_number)

    @classmethod
    def sesam2(cls) -> Role:
        return cls("sesam2", "sesam2Publishes", "sesam2Consumes")


class SeenIds(Protocol):
    """Where the consumer remembers handled message_ids (in memory by default; a database across restarts)."""

    def __contains__(self, message_id: object) -> bool: ...

    def add(self, message_id: str) -> None: ...


class RecentIds:
    """The last `capacity` handled message_ids, in memory."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, message_id: object) -> bool:
        return message_id in self._ids

    def add(self, message_id: str) -> None:
        self._ids[message_id] = None
        self._ids.move_to_end(message_id)
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)


@dataclass(frozen=True)
class Published:
    message_id: str
    message_type: str
    exchange: str
    routing_key: str
    attempts: int


class HmcClient:
    """One connection to RabbitMQ for one role; use as a context manager (`with HmcClient(...) as client`)."""

    def __init__(
        self,
        url: str,
        role: Role,
        *,
        user_id: str | None = None,
        tls: Tls | None = None,
        prefix: str = "",
        contract: Contract | None = None,
        attempts: int = 5,
        pause: float = 0.5,
        seen: SeenIds | None = None,
    ) -> None:
        self.parameters = connection_parameters(url, tls)
        self.role = role
        credentials = self.parameters.credentials
        # user_id must be the connection's user (RabbitMQ checks it): the URL's, or the certificate's CN.
        self.user_id = user_id or (credentials.username if isinstance(credentials, pika.PlainCredentials) else None)
        self.prefix = prefix
        self.contract = contract or Contract.load()
        self.attempts = attempts
        self.pause = pause
        self.seen: SeenIds = seen or RecentIds()
        self._connection: pika.BlockingConnection | None = None
        self._channel: BlockingChannel | None = None

    # ---------------------------------------------------------------- connection

    def __enter__(self) -> HmcClient:
        self.channel()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def channel(self) -> BlockingChannel:
        if self._channel is None or not self._channel.is_open:
            self.close()
            self._connection = pika.BlockingConnection(self.parameters)
            self._channel = self._connection.channel()
            self._channel.confirm_delivery()
        return self._channel

    def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*CONNECTION_LOST):  # closing what is already gone
                connection.close()

    @property
    def queue(self) -> str:
        """The queue this role consumes, with the environment's prefix."""
        address = self.contract.address(self.role.consumes)
        return self.prefix + address.replace("{customerNumber}", self.role.customer_number or "")

    # ---------------------------------------------------------------- publish

    def validate(self, body: bytes) -> Document:
        """The message read and valid, and written by this role (dialect, customer number); InvalidMessage if not."""
        doc = self.contract.read(body)
        problems = []
        if doc.spec.dialect != self.role.dialect:
            problems.append(
                Problem("client.dialect", f"a {doc.spec.dialect} message; this client writes {self.role.dialect}")
            )
        if self.role.customer_number and doc.customer_number != self.role.customer_number:
            problems.append(
                Problem(
                    "security.customer-mismatch",
                    f"the header names customer {doc.customer_number}, this client is {self.role.customer_number}",
                )
            )
        if problems:
            raise InvalidMessage(problems)
        return doc

    def publish(self, body: bytes, *, reply_to: str | None = None) -> Published:
        """Validate, publish with every property, mandatory, and wait for RabbitMQ's confirm (see the module)."""
        doc = self.validate(body)
        exchange = self.prefix + self.contract.address(self.role.publishes)
        routing_key = doc.spec.routing_key.replace("<customerNumber>", self.role.customer_number or "")
        properties = pika.BasicProperties(
            message_id=doc.message_id,
            correlation_id=doc.correlation_id,
            type=doc.spec.type,
            user_id=self.user_id,
            content_type=CONTENT_TYPE,
            timestamp=int(time.time()),
            delivery_mode=PERSISTENT,
            reply_to=reply_to,
            headers={SCHEMA_VERSION_HEADER: doc.schema_version},
        )
        last: Exception | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                self.channel().basic_publish(exchange, routing_key, body, properties, mandatory=True)
                return Published(doc.message_id, doc.spec.type, exchange, routing_key, attempt)
            except pika.exceptions.UnroutableError:
                raise Unroutable(f"{exchange} has no queue bound for {routing_key!r}") from None
            except pika.exceptions.NackError as e:
                last = e  # RabbitMQ could not take it: same message, same id, again
            except CONNECTION_LOST as e:
                last = e
                self.close()
            time.sleep(min(self.pause * 2 ** (attempt - 1), 30.0))
        raise NotConfirmed(f"{doc.spec.type} {doc.message_id} not confirmed after {self.attempts} attempts: {last!r}")

    # ---------------------------------------------------------------- consume

    def consume(self, handler: Callable[[Answer], bool | None], *, timeout: float | None = None) -> int:
        """Hand each new message of this role's queue to `handler`, acknowledging it after the handler returns;
        stop when the handler returns True or no message came for `timeout` seconds. The number handled."""
        handled = 0
        with contextlib.closing(self._deliveries(timeout)) as deliveries:
            for answer, ack, _release in deliveries:
                stop = handler(answer)
                ack()
                handled += 1
                if stop:
                    break
        return handled

    def wait_for(
        self, wanted: Callable[[Answer], bool], timeout: float = 30.0, *, other: Callable[[Answer], None] | None = None
    ) -> Answer:
        """The first new message `wanted` accepts, acknowledged. Each other message goes to `other` (then is
        acknowledged); without `other` it is left in the queue for the next consume (held unacknowledged while
        waiting, up to the prefetch of 50)."""
        deadline = time.monotonic() + timeout
        left: list[Callable[[], None]] = []
        deliveries = self._deliveries(timeout)
        try:
            for answer, ack, release in deliveries:
                if wanted(answer):
                    ack()
                    return answer
                if other is not None:
                    other(answer)
                    ack()
                else:
                    left.append(release)
                if time.monotonic() > deadline:
                    break
        finally:
            for release in left:
                release()
            deliveries.close()
        raise TimeoutError(f"nothing wanted arrived on {self.queue} within {timeout} s")

    def _deliveries(
        self, timeout: float | None
    ) -> Generator[tuple[Answer, Callable[[], None], Callable[[], None]], None, None]:
        """Each new message with how to acknowledge it (handled: remembered) and how to release it (requeued)."""
        channel = self.channel()
        channel.basic_qos(prefetch_count=50)
        try:
            for method, _properties, body in channel.consume(self.queue, inactivity_timeout=timeout):
                if method is None:
                    return  # nothing for `timeout` seconds
                tag = method.delivery_tag
                try:
                    answer = parse(self.contract, body, method.routing_key)
                except InvalidMessage:
                    # Not this contract (a newer schema version? load the current bundle): back to the queue,
                    # never dropped.
                    channel.basic_nack(tag, requeue=True)
                    raise
                if answer.message_id in self.seen:
                    channel.basic_ack(tag)  # a redelivery or a republished answer: handled already
                    continue

                def ack(tag: int = tag, message_id: str = answer.message_id) -> None:
                    # Remembered once handled, before the ack: if the ack is lost with the connection, the
                    # redelivery is skipped; a handler that raised never gets here, so its message comes again.
                    self.seen.add(message_id)
                    channel.basic_ack(tag)

                def release(tag: int = tag) -> None:
                    channel.basic_nack(tag, requeue=True)

                yield answer, ack, release
        finally:
            if channel.is_open:
                channel.cancel()


def connection_parameters(url: str, tls: Tls | None) -> pika.URLParameters:
    """pika's parameters for `url`; with `tls`, the server verified against its CA (host name included) and the
    client certificate presented, logging in as its common name (EXTERNAL) when the URL names no user."""
    parameters = pika.URLParameters(url)
    if tls is not None:
        context = ssl.create_default_context(cafile=tls.ca_file)
        if tls.cert_file:
            context.load_cert_chain(tls.cert_file, tls.key_file)
            if parameters.credentials == pika.ConnectionParameters.DEFAULT_CREDENTIALS:
                parameters.credentials = pika.credentials.ExternalCredentials()
        parameters.ssl_options = pika.SSLOptions(context, tls.server_hostname or parameters.host)
    return parameters
