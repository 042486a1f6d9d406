"""Deliveries as the broker's transport hands them to the pipeline: a message rendered in its side's
dialect, with the AMQP properties its sender would set (tests/store/: buffer stores, invoices, prescribers)."""

from __future__ import annotations

import dataclasses
from datetime import date

from broker.contract.dialect import DIALECTS
from broker.envelope import Delivery
from broker.model import messages as m
from broker.model.codes import BillingForm, Side
from broker.translation import forward

CUSTOMER = DIALECTS[Side.CUSTOMER]
SESAM2 = DIALECTS[Side.SESAM2]


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


def confirmation_of(order: m.CustomerOrder, customer: str | None = None) -> m.OrderConfirmation:
    """SESAM2's OrderConfirmation of `order`: every line, delivered on 2026-12-01 (for another customer: a
    confirmation nobody may receive)."""
    header = forward(order, purpose="test-confirmation").header
    return m.OrderConfirmation(
        header=dataclasses.replace(
            header, message_type="OrderConfirmation", customer_number=customer or header.customer_number
        ),
        order_id=order.order_id,
        sesam2_order_number="4000012345",
        lines=[
            m.ConfirmedLine(
                line_number=line.line_number,
                article_number=line.article_number,
                quantity=line.quantity,
                delivery_date=date(2026, 12, 1),
                billing_form=BillingForm.RENTAL,
            )
            for line in order.lines
        ],
    )
