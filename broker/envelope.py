"""What travels on AMQP besides the XML: the envelope properties of an outgoing message.

The pipeline decides *what* goes out (an Outgoing); the AMQP adapter maps it onto exchanges with the
environment's prefix and onto AMQP properties. Names of exchanges live in adapters/amqp/topology.py only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

CONTENT_TYPE = "application/xml"
SCHEMA_VERSION_HEADER = "x-schema-version"


class Exchange(StrEnum):
    """Logical exchanges of the AMQP contract; DIRECT publishes to a reply_to queue."""

    CUSTOMER_IN = "customer.in"
    SESAM2_OUT = "sesam2.out"
    SESAM2_IN = "sesam2.in"
    CUSTOMER_OUT = "customer.out"
    INVOICE = "invoice"
    EVENTS = "events"
    DIRECT = ""


@dataclass(frozen=True)
class Outgoing:
    exchange: Exchange
    routing_key: str
    body: bytes
    message_id: str
    message_type: str
    correlation_id: str | None = None
    schema_version: str = "1.0"
    content_type: str = CONTENT_TYPE
    timestamp: int | None = None  # seconds since the epoch
    headers: dict[str, str] = field(default_factory=dict)


class Side(StrEnum):
    """Which side a delivery came from: it decides the dialect expected and where answers go."""

    CUSTOMER = "customer"
    SESAM2 = "sesam2"


@dataclass(frozen=True)
class Delivery:
    """One message taken from a broker queue, transport details reduced to what the pipeline needs."""

    side: Side
    body: bytes
    routing_key: str = ""
    message_id: str | None = None
    correlation_id: str | None = None
    message_type: str | None = None
    user_id: str | None = None  # set and verified by RabbitMQ when the publisher sent it
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
