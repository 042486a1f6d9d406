"""Rules beyond the document itself: the right side, the right sender, a consistent envelope, the catalog.

What RabbitMQ vouches for (user_id, checked by RabbitMQ; the routing key, held to each user's own
customer numbers by topic permissions) decides who sent a message, never the document's header.
"""

from __future__ import annotations

from broker.catalog import Catalog
from broker.config import Settings
from broker.contract.dialect import DIALECTS, Parsed
from broker.envelope import Delivery
from broker.model import messages as m
from broker.model.codes import Direction, Side

_EXPECTED = {Side.CUSTOMER: DIALECTS[Side.CUSTOMER], Side.SESAM2: DIALECTS[Side.SESAM2]}
DIRECTION = {Side.CUSTOMER: Direction.INBOUND, Side.SESAM2: Direction.OUTBOUND}


def problem(rule: str, message: str) -> m.Problem:
    return m.Problem(rule=rule, message=message)


def check(settings: Settings, catalog: Catalog | None, d: Delivery, parsed: Parsed) -> list[m.Problem]:
    problems: list[m.Problem] = []
    if parsed.dialect is not None and parsed.dialect is not _EXPECTED[d.side]:
        problems.append(
            problem("message.wrong-side", f"a {parsed.dialect.name} message arrived from the {d.side} side")
        )
    message = parsed.message
    if message is None:
        return problems
    header = message.header
    if d.message_id and d.message_id != header.message_id:
        problems.append(problem("envelope.message-id", "AMQP message_id differs from the header's MessageId"))
    if type(message).direction is not DIRECTION[d.side]:
        problems.append(problem("message.wrong-direction", f"{type(message).__name__} is not sent by {d.side}"))
    if d.side is Side.CUSTOMER:
        problems += authorise(settings, d, header)
        if catalog is not None and parsed.dialect is not None:
            for breach in catalog.check(message):
                path = parsed.dialect.binding.element_path(type(message), breach.field)
                problems.append(m.Problem(rule=breach.rule, message=breach.message, path=path))
    return problems


def authorise(settings: Settings, d: Delivery, header: m.Header) -> list[m.Problem]:
    """A customer system may send only for the customer numbers it owns."""
    number = header.customer_number
    customer = settings.customer(number)
    if customer is None:
        return [problem("customer.unknown", f"customer number {number} is not configured")]
    routed = d.routing_key.split(".", 1)[0] if d.routing_key else number
    if routed != number:
        return [problem("security.customer-mismatch", f"routing key is for {routed}, header for {number}")]
    if d.user_id is not None and customer.amqp_user is not None and d.user_id != customer.amqp_user:
        return [problem("security.forged-customer", f"AMQP user {d.user_id} does not own customer {number}")]
    return []


def sender(settings: Settings, d: Delivery) -> str | None:
    """The customer system that really sent a delivery, from what RabbitMQ vouches for, never the document:
    the customer numbers its AMQP user owns (user_id is checked by RabbitMQ), else the routing key's
    (RabbitMQ's topic permissions hold each user to its own numbers). None when it cannot be told."""
    routed = d.routing_key.split(".", 1)[0] if d.routing_key else ""
    routed_customer = settings.customer(routed)
    if d.user_id is not None:
        owned = [c.number for c in settings.customers if c.amqp_user == d.user_id]
        if owned:
            return routed if routed in owned else owned[0]
        if routed_customer is not None and routed_customer.amqp_user is not None:
            return None  # a user that owns no customer number, on another system's routing key
    return routed if routed_customer is not None else None


def claimed_customer(d: Delivery, parsed: Parsed) -> str | None:
    """The customer an invalid message claims to be from (for the store's row, not for trust)."""
    if parsed.claimed_customer:
        return parsed.claimed_customer
    return d.routing_key.split(".", 1)[0] if d.side is Side.CUSTOMER and d.routing_key else None
