"""The AMQP topology of the contract (DESIGN.md section 4): every name in one place, declared idempotently.

`plan()` describes the exchanges, queues and bindings as data; `declare()` executes the plan on a kombu
connection (RabbitMQ, or the in-memory transport of the embedded default); `broker_queues()` gives the
queues a broker worker consumes.

Ordering of messages about one order is RabbitMQ's job, not ours:
- partitions == 1: one inbound queue per side, bound to its topic exchange with "#", declared with
  x-single-active-consumer so that any number of workers may attach but one consumes at a time;
- partitions > 1: an x-consistent-hash exchange per side hashes the correlation_id (the order) onto
  `partitions` single-active-consumer queues, so one order always lands in the same queue while different
  orders spread over the workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange as KExchange
from kombu.entity import Queue, binding

from broker.config import QueueType
from broker.contract.dialect import DIALECTS
from broker.envelope import Exchange
from broker.model.codes import Direction, Side

SIDES: tuple[Side, ...] = tuple(Side)

HASH_EXCHANGE_TYPE = "x-consistent-hash"
HASH_PLUGIN = "rabbitmq_consistent_hash_exchange"

# Logical exchange -> (name without prefix, AMQP type). DIRECT is the default exchange and has no entry.
_EXCHANGES: dict[Exchange, tuple[str, str]] = {
    Exchange.CUSTOMER_IN: ("hmc.customer.in", "topic"),
    Exchange.SESAM2_OUT: ("hmc.sesam2.out", "direct"),
    Exchange.SESAM2_IN: ("hmc.sesam2.in", "topic"),
    Exchange.CUSTOMER_OUT: ("hmc.customer.out", "topic"),
    Exchange.INVOICE: ("hmc.invoice", "topic"),
    Exchange.EVENTS: ("hmc.events", "topic"),
}
# Where each side's inbound messages arrive (what the broker consumes).
_INBOUND: dict[Side, Exchange] = {Side.CUSTOMER: Exchange.CUSTOMER_IN, Side.SESAM2: Exchange.SESAM2_IN}
# Characters that carry meaning in a topic routing key: a customer number containing one would bind or
# route more than its own messages.
_ROUTING_KEY_SPECIALS = frozenset(".*#")


@dataclass(frozen=True)
class TopologySettings:
    prefix: str = ""  # environment prefix, e.g. "test." -> "test.hmc.customer.in"; nothing else changes
    queue_type: QueueType = "classic"
    partitions: int = 1  # > 1: consistent-hash partitions by correlation id (see the module docstring)
    customers: tuple[str, ...] = ()  # customer numbers: a queue per customer system is declared for each
    invoice_customers: tuple[str, ...] = ()  # customers granted invoice permission: an invoice queue each

    def __post_init__(self) -> None:
        if self.queue_type not in ("classic", "quorum"):
            raise ValueError(f"queue_type must be 'classic' or 'quorum', not {self.queue_type!r}")
        if self.partitions < 1:
            raise ValueError(f"partitions must be at least 1, not {self.partitions}")
        for customer in (*self.customers, *self.invoice_customers):
            if not customer or _ROUTING_KEY_SPECIALS & set(customer):
                raise ValueError(f"customer number {customer!r} is empty or contains one of '.', '*', '#'")


class Names:
    """Every exchange and queue name of the contract, with the environment's prefix."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def exchange(self, e: Exchange) -> str:
        if e is Exchange.DIRECT:
            return ""  # the default exchange: its name is fixed by AMQP and never prefixed
        return self.prefix + _EXCHANGES[e][0]

    @property
    def sesam2_queue(self) -> str:
        """What SESAM2 consumes."""
        return f"{self.prefix}sesam2.in"

    def customer_queue(self, customer: str) -> str:
        return f"{self.prefix}hmc.customer.{customer}"

    def invoice_queue(self, customer: str) -> str:
        return f"{self.prefix}hmc.invoice.{customer}"

    def inbound_queue(self, side: Side, partition: int | str) -> str:
        """One of the broker's own queues of one side (`partition` a label such as "{partition}" in documents)."""
        return f"{self.prefix}hmc.broker.{side}-in.{partition}"

    def inbound_queues(self, side: Side, partitions: int) -> list[str]:
        """The broker's own queues of one side; with partitions == 1 just the one."""
        return [self.inbound_queue(side, i) for i in range(partitions)]

    def hash_exchange(self, side: Side) -> str:
        return f"{self.prefix}hmc.broker.{side}-in.hash"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.prefix}hmc.dlx"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.prefix}hmc.dead-letter"


def sesam2_message_types() -> tuple[str, ...]:
    """The types SESAM2 receives (customer -> HMC): the routing keys sesam2.in is bound with.

    Answers (OrderConfirmation, InvoiceData...) are not bound: one sent the wrong way comes back unroutable.
    """
    binding = DIALECTS[Side.SESAM2].binding
    return tuple(cls.__name__ for cls in binding.by_type if cls.direction is Direction.INBOUND)


@dataclass(frozen=True)
class ExchangeBinding:
    destination: str
    source: str
    routing_key: str


@dataclass(frozen=True)
class Topology:
    """What declare() creates, in declaration order: exchanges, exchange-to-exchange bindings, queues."""

    exchanges: tuple[KExchange, ...]
    exchange_bindings: tuple[ExchangeBinding, ...]
    queues: tuple[Queue, ...]
    broker_queues: tuple[Queue, ...]  # the subset of queues the broker worker consumes


def plan(settings: TopologySettings) -> Topology:
    """The topology for these settings, as kombu entities; nothing is declared yet."""
    names = Names(settings.prefix)
    exchanges = {e: KExchange(names.exchange(e), type=kind, durable=True) for e, (_, kind) in _EXCHANGES.items()}
    dlx = KExchange(names.dead_letter_exchange, type="fanout", durable=True)

    def queue(name: str, bindings: list[tuple[KExchange, str]], **arguments: Any) -> Queue:
        # x-queue-type always explicit: a quorum queue must be durable, and so is everything here.
        return Queue(
            name,
            bindings=[binding(exchange, routing_key=key) for exchange, key in bindings],
            durable=True,
            queue_arguments={"x-queue-type": settings.queue_type, **arguments},
        )

    # The broker's inbound queues: one consumer at a time each (order kept), and what they dead-letter
    # (rejected without requeue, or over a delivery limit) is kept in hmc.dead-letter instead of vanishing.
    inbound_arguments = {"x-single-active-consumer": True, "x-dead-letter-exchange": dlx.name}
    hash_exchanges: list[KExchange] = []
    exchange_bindings: list[ExchangeBinding] = []
    inbound: list[Queue] = []
    for side in SIDES:
        source = exchanges[_INBOUND[side]]
        queue_names = names.inbound_queues(side, settings.partitions)
        if settings.partitions == 1:
            inbound.append(queue(queue_names[0], [(source, "#")], **inbound_arguments))
            continue
        hashing = KExchange(
            names.hash_exchange(side),
            type=HASH_EXCHANGE_TYPE,
            durable=True,
            arguments={"hash-property": "correlation_id"},
        )
        hash_exchanges.append(hashing)
        exchange_bindings.append(ExchangeBinding(destination=hashing.name, source=source.name, routing_key="#"))
        # The binding key of a consistent-hash exchange is the weight: equal weights, equal shares.
        inbound.extend(queue(name, [(hashing, "1")], **inbound_arguments) for name in queue_names)

    sesam2_out = exchanges[Exchange.SESAM2_OUT]
    queues = [
        queue(names.sesam2_queue, [(sesam2_out, t) for t in sesam2_message_types()]),
        *(queue(names.customer_queue(c), [(exchanges[Exchange.CUSTOMER_OUT], f"{c}.#")]) for c in settings.customers),
        *(queue(names.invoice_queue(c), [(exchanges[Exchange.INVOICE], c)]) for c in settings.invoice_customers),
        queue(names.dead_letter_queue, [(dlx, "")]),
        *inbound,
    ]
    return Topology(
        exchanges=(*exchanges.values(), dlx, *hash_exchanges),
        exchange_bindings=tuple(exchange_bindings),
        queues=tuple(queues),
        broker_queues=tuple(inbound),
    )


def broker_queues(settings: TopologySettings) -> list[Queue]:
    """The queues a broker worker consumes, both sides (declaring them again on consume is harmless)."""
    return list(plan(settings).broker_queues)


def declare(connection: Connection, settings: TopologySettings) -> None:
    """Declare every exchange, queue and binding of the plan; idempotent for the same settings.

    Declaring with different arguments than an existing queue (classic vs quorum, say) is refused by
    RabbitMQ with PRECONDITION_FAILED: such a change needs the queue deleted (drained) first.
    """
    if settings.partitions > 1 and connection.transport.driver_type != "amqp":
        # kombu's in-memory transport ignores queue arguments, has no x-consistent-hash and no
        # exchange-to-exchange bindings: partitions could not keep an order's messages together there.
        raise ValueError(
            f"partitions={settings.partitions} needs RabbitMQ's {HASH_EXCHANGE_TYPE} exchange; "
            f"the {connection.transport_cls} transport has none: use partitions=1"
        )
    topology = plan(settings)
    channel = connection.channel()
    try:
        for exchange in topology.exchanges:
            _declare_exchange(connection, channel, exchange)
        for b in topology.exchange_bindings:
            channel.exchange_bind(destination=b.destination, source=b.source, routing_key=b.routing_key)
        for q in topology.queues:
            q.declare(channel=channel)
    finally:
        channel.close()


def _declare_exchange(connection: Connection, channel: Any, exchange: KExchange) -> None:
    try:
        exchange.declare(channel=channel)
    except (*connection.connection_errors, *connection.channel_errors) as e:
        if exchange.type != HASH_EXCHANGE_TYPE:
            raise
        # RabbitMQ only says "invalid exchange type" (and closes the connection): name the fix.
        raise RuntimeError(
            f"cannot declare {exchange.name} ({e}); is the {HASH_PLUGIN} plugin enabled? "
            f"(rabbitmq-plugins enable {HASH_PLUGIN})"
        ) from e


def delete(connection: Connection, settings: TopologySettings, *, force: bool = False) -> list[str]:
    """Delete the queues and exchanges of the plan (its prefix's only); the queues kept because they still
    hold messages. A queue with messages is deleted only with `force`: deleting it loses them."""
    topology = plan(settings)
    kept = []
    channel = connection.channel()
    try:
        for queue in sorted(q.name for q in topology.queues):
            try:
                channel.queue_delete(queue, if_empty=not force)
            except connection.channel_errors:  # PRECONDITION_FAILED: not empty; the channel is closed
                kept.append(queue)
                channel = connection.channel()
        if not kept:  # an exchange is deleted only with all its queues: nothing routes into a void meanwhile
            for exchange in sorted(e.name for e in topology.exchanges):
                channel.exchange_delete(exchange)
    finally:
        channel.close()
    return kept
