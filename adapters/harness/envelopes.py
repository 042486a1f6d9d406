"""Where each side publishes a message, in which dialect, with which AMQP properties: the README's AMQP
contract as plain data, free of any AMQP client, so that pika (wire.py) and kombu (an embedded demo)
publish exactly the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from adapters.amqp.topology import Names
from broker.contract import routing
from broker.contract.dialect import DIALECTS
from broker.envelope import CONTENT_TYPE, SCHEMA_VERSION_HEADER, Exchange
from broker.model.codes import Side
from broker.model.messages import Message

PERSISTENT = 2


@dataclass(frozen=True)
class Addressed:
    """One message ready for the wire."""

    exchange: str
    routing_key: str
    body: bytes
    properties: dict[str, Any]  # keyword arguments of pika.BasicProperties and of kombu's publish()
    message_type: str


def properties(message: Message) -> dict[str, Any]:
    """message_id, correlation_id (the order), type, content_type, timestamp, delivery_mode 2, and the
    schema version header."""
    header = message.header
    return {
        "message_id": header.message_id,
        "correlation_id": header.correlation_id or routing.reference(message),
        "type": type(message).__name__,
        "content_type": CONTENT_TYPE,
        "timestamp": int(header.sent_at.timestamp()),
        "delivery_mode": PERSISTENT,
        "headers": {SCHEMA_VERSION_HEADER: header.schema_version},
    }


def address(side: Side, message: Message, names: Names) -> Addressed:
    """Customer systems publish to hmc.customer.in with `<customer>.<Type>` in the customer dialect;
    SESAM2 publishes to hmc.sesam2.in with `<Type>` in its own."""
    name = type(message).__name__
    if side is Side.CUSTOMER:
        exchange, key = names.exchange(Exchange.CUSTOMER_IN), f"{message.header.customer_number}.{name}"
        body = DIALECTS[Side.CUSTOMER].render(message)
    else:
        exchange, key, body = names.exchange(Exchange.SESAM2_IN), name, DIALECTS[Side.SESAM2].render(message)
    return Addressed(exchange, key, body, properties(message), name)
