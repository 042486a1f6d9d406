"""What an answer does to an order's state: pure functions over the model.

Which order a message is about is the routing table's (broker/contract/routing.py); the order view's
handlers (broker/handlers/order_view.py) store what these return.
"""

from __future__ import annotations

from typing import Any

from broker.model import messages as m
from broker.model.codes import OrderStatus

_STATUS_AFTER: dict[type[m.Message], OrderStatus] = {
    m.OrderConfirmation: OrderStatus.CONFIRMED,
    m.DeliveryDelay: OrderStatus.DELAYED,
    m.OrderCancelled: OrderStatus.CANCELLED,
    m.DeliveryReceipt: OrderStatus.DELIVERED,
    m.DeliveryNote: OrderStatus.DELIVERED,
    m.WorkOrderCompleted: OrderStatus.DELIVERED,
    m.WorkOrderCancelled: OrderStatus.CANCELLED,
    m.PickupConfirmation: OrderStatus.CONFIRMED,
    m.PickupCancelled: OrderStatus.CANCELLED,
    m.ReturnReceipt: OrderStatus.DELIVERED,
    m.FaultReportAnswer: OrderStatus.DELIVERED,
    m.OrthopaedicReferralAnswer: OrderStatus.CONFIRMED,
}


ANSWERS = tuple(_STATUS_AFTER)  # the types that move an order's state


def status_after(message: m.Message) -> OrderStatus | None:
    """The order's status once this answer is applied (a line-level cancel or delay is still partial)."""
    return _STATUS_AFTER.get(type(message))


def opening_lines(message: m.Message) -> dict[str, Any]:
    """Line state of a new entry: per line number, article, quantity, status."""
    lines = getattr(message, "lines", None) or getattr(message, "devices", None) or []
    return {
        str(line.line_number): {"article": line.article_number, "quantity": line.quantity, "status": "sent"}
        for line in lines
        if hasattr(line, "line_number")
    }


def apply(lines: dict[str, Any], message: m.Message) -> dict[str, Any]:
    """New line state after an answer; lines the answer does not name keep theirs."""
    out = {k: dict(v) for k, v in lines.items()}
    status = status_after(message)
    if isinstance(message, m.OrderConfirmation):
        for line in message.lines:
            entry = out.setdefault(str(line.line_number), {"article": line.article_number, "quantity": line.quantity})
            entry.update(status=OrderStatus.CONFIRMED.value, delivery_date=line.delivery_date.isoformat())
    elif isinstance(message, m.DeliveryDelay | m.OrderCancelled) and message.line_number is not None:
        entry = out.setdefault(str(message.line_number), {})
        entry["status"] = status.value if status else entry.get("status")
        if isinstance(message, m.DeliveryDelay):
            entry["delivery_date"] = message.new_delivery_date.isoformat()
    elif status is not None:
        for entry in out.values():
            entry["status"] = status.value
            if isinstance(message, m.DeliveryDelay):
                entry["delivery_date"] = message.new_delivery_date.isoformat()
            elif isinstance(message, m.PickupConfirmation):
                # The date SESAM2 collects the devices: a status query answers it per device line (the
                # reply's delivery date), so "confirmed" comes with its date.
                entry["delivery_date"] = message.pickup_date.isoformat()
    return out


def status_of(current: str, lines: dict[str, Any], message: m.Message) -> str:
    """The order's status after `message`: a cancelled line cancels the order only when all are."""
    status = status_after(message)
    if status is None:
        return current
    if isinstance(message, m.OrderCancelled) and message.line_number is not None:
        all_cancelled = lines and all(v.get("status") == OrderStatus.CANCELLED.value for v in lines.values())
        return OrderStatus.CANCELLED.value if all_cancelled else current
    return status.value
