"""The order view: an entry per customer order (work order, pickup, report) and what SESAM2 answered.

Opening messages (routing table: opens_order) make the entry; SESAM2's answers move its state (pure rules
in broker/model/order_state.py). An answer for an order the view does not know is kept and reported, not
dropped. OrderStatusQuery reads it (broker/handlers/status_replies.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from broker.config import Settings
from broker.contract import routing
from broker.handlers.registry import Context, Registry
from broker.model import messages as m
from broker.model import order_state
from broker.model.codes import Direction, OrderStatus
from broker.store.unit_of_work import UnitOfWork


def register(registry: Registry) -> None:
    registry.before_batch(load_orders)
    registry.on(*routing.opening_types())(open_order)
    registry.on(*(t for t in order_state.ANSWERS if t.direction is Direction.OUTBOUND))(correlate)


def order_key(message: m.Message) -> tuple[str, str] | None:
    """The order-view key a message reads or opens: (customer number, the customer's order reference)."""
    customer = message.header.customer_number
    ref = routing.reference(message) if customer else None
    return (customer, ref) if customer and ref else None


def load_orders(messages: Sequence[m.Message], uow: UnitOfWork, _settings: Settings) -> None:
    """The batch's orders in one query; the handlers then read them from memory."""
    uow.orders.load(k for message in messages if (k := order_key(message)) is not None)


def open_order(ctx: Context, message: m.Message) -> None:
    key = order_key(message)
    if key is not None and ctx.uow.orders.get(*key) is None:
        ctx.uow.orders.add(
            customer_number=key[0],
            order_id=key[1],
            kind=type(message).__name__,
            status=OrderStatus.SENT.value,
            lines=order_state.opening_lines(message),
            opened_by=message.header.message_id,
        )


@dataclass(frozen=True)
class Reopened:
    """An opening message for an order the view holds already, opened by another message id."""

    order_id: str
    first_message_id: str | None  # None: opened before the view recorded it (migration 0005)


def reopened(message: m.Message, uow: UnitOfWork) -> Reopened | None:
    """Whether this opening message names an order already opened by another message (one order per order
    id: a customer system that retries with a fresh MessageId must not make SESAM2 act twice).

    The batch's orders are in memory already (load_orders): no query and no work beyond a dict lookup. The
    orders table's primary key keeps the order unique between workers: of two batches opening it at once
    one fails to commit, and its retry finds the order here."""
    found = routing.route(type(message))
    key = order_key(message) if found is not None and found.opens_order else None
    order = uow.orders.get(*key) if key is not None else None
    if order is None or order.opened_by == message.header.message_id:  # new, or its opener's own replay
        return None
    return Reopened(order.order_id, order.opened_by)


# Envelope, not business content: a retry gets a new id and time, and may come in a newer schema version.
_NO_TIME = datetime(2000, 1, 1, tzinfo=UTC)


def same_business_content(first: m.Message, again: m.Message) -> bool:
    """Whether two messages say the same thing: the models compared without the header's id, time and
    version. The models are canonical (identifiers normalised, text in NFC, times compared as instants), so
    spacing, prefixes or element order the schema allows do not make two documents differ. Only run for a
    reopened order (rare): hashing every opening message's content cost 60-100 us each."""

    def business(message: m.Message) -> m.Message:
        return replace(message, header=replace(message.header, message_id="", sent_at=_NO_TIME, schema_version=""))

    return type(first) is type(again) and business(first) == business(again)


def correlate(ctx: Context, message: m.Message) -> None:
    """Apply an answer to its order."""
    key = order_key(message)
    if key is None:
        return
    customer, ref = key
    order = ctx.uow.orders.get(customer, ref)
    if order is None:
        ctx.step("correlate", "unknown-order", f"no order {ref} of customer {customer} in the order view")
        return
    lines = order_state.apply(order.lines, message)
    order.status = order_state.status_of(order.status, lines, message)
    order.lines = lines
    order.sesam2_order_number = getattr(message, "sesam2_order_number", None) or order.sesam2_order_number
    order.updated_at = datetime.now(UTC)
    ctx.step("correlate", "ok", f"order {ref} is now {order.status}")
