"""The order view: an entry per customer order (work order, pickup, report) and what SESAM2 answered.

Opening messages (routing table: opens_order) make the entry; SESAM2's answers move its state (pure rules
in broker/model/order_state.py). An answer for an order the view does not know is kept and reported, not
dropped. OrderStatusQuery reads it (broker/handlers/status_replies.py).
"""

from __future__ import annotations

from collections.abc import Sequence
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
        )


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
