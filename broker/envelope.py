"""What travels on AMQP besides the XML: the envelope properties of an outgoing message.

The pipeline decides *what* goes out (an Outgoing); the AMQP adapter maps it onto exchanges with the
environment's prefix and onto AMQP properties. Names of exchanges live in adapters/amqp/topology.py only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from broker.model.codes import Side

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


@dataclass(frozen=True)
class Replay:
    """An operator's replay of a stored message: it runs through the pipeline again as a new attempt.

    Without `force`, nothing that already went out (or is on its way) goes out a second time. An edited
    payload (`diff` set) is a new version: what it sends gets ids of its own (see broker/pipeline.py).
    """

    of: int  # the original message's row; the new row's replay_of
    source: int  # the row whose payload is replayed: the original, or a replay or an edit of it
    operator: str  # the user id the replay is done for
    reason: str
    force: bool = False
    diff: str | None = None  # an edit: unified diff of the payload against the source's
    ticket: str = ""  # tells the rows of one replay command apart from others
    job: int | None = None


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
    replay: Replay | None = None  # set when an operator replays a stored message
    published_at: float | None = None  # the AMQP timestamp its publisher set (epoch seconds), if any
