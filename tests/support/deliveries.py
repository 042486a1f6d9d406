"""Deliveries as the broker's transport hands them to the pipeline: a message rendered in its side's
dialect, with the AMQP properties its sender would set (tests/store/: buffer stores, invoices, prescribers)."""

from __future__ import annotations

from broker.contract.dialect import DIALECTS
from broker.contract.spec import Dialect
from broker.envelope import Delivery, Side
from broker.model import messages as m

CUSTOMER = DIALECTS[Dialect.CUSTOMER]
SESAM2 = DIALECTS[Dialect.SESAM2]


def customer_delivery(message: m.Message) -> Delivery:
    """`message` from a customer system, routed `<customer number>.<type>`."""
    h = message.header
    return Delivery(
        side=Side.CUSTOMER,
        body=CUSTOMER.render(message),
        routing_key=f"{h.customer_number}.{type(message).__name__}",
        message_id=h.message_id,
        correlation_id=h.correlation_id,
        message_type=type(message).__name__,
    )


def sesam2_delivery(message: m.Message) -> Delivery:
    """`message` from SESAM2, routed by its type."""
    h = message.header
    return Delivery(
        side=Side.SESAM2,
        body=SESAM2.render(message),
        routing_key=type(message).__name__,
        message_id=h.message_id,
        correlation_id=h.correlation_id,
        message_type=type(message).__name__,
    )
