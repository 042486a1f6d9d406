"""OrderStatusQuery ("where is my order"): answered by the broker from its order view, not by SESAM2.

The reply goes to the query's reply_to queue when it names one (request/reply), else to the customer's
own routing as OrderStatusReply.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from broker.envelope import Exchange
from broker.handlers.registry import Context, Registry
from broker.model import messages as m
from broker.model.codes import OrderStatus
from broker.store.orders import Order
from broker.translation import BROKER_SYSTEM, forward


def register(registry: Registry) -> None:
    registry.on(m.OrderStatusQuery)(answer)


def answer(ctx: Context, query: m.OrderStatusQuery) -> None:
    customer = query.header.customer_number or ""
    reply = status_reply(query, ctx.uow.orders.get(customer, query.order_id))
    reply_to = ctx.delivery.reply_to
    if reply_to:
        ctx.send(reply, Exchange.DIRECT, reply_to)
    else:
        ctx.send(reply, Exchange.CUSTOMER_OUT, f"{customer}.OrderStatusReply")
    ctx.set_status("answered")
    ctx.step("answer", "ok", f"order status {reply.status}")


def status_reply(query: m.OrderStatusQuery, order: Order | None) -> m.OrderStatusReply:
    # The broker's own answer: its time and its name, not the query's (forward() keeps the sender's).
    header = replace(
        forward(query, purpose="status-reply").header,
        message_type="OrderStatusReply",
        correlation_id=query.order_id,
        sent_at=datetime.now(UTC).replace(microsecond=0),
        sender_system=BROKER_SYSTEM,
        forwarded_at=None,
    )
    if order is None:
        return m.OrderStatusReply(
            header=header, order_id=query.order_id, status=OrderStatus.UNKNOWN, updated_at=header.sent_at
        )
    lines = [
        m.StatusLine(
            line_number=int(number),
            article_number=line["article"],
            quantity=line["quantity"],
            status=OrderStatus(line.get("status", OrderStatus.SENT.value)),
            delivery_date=datetime.fromisoformat(line["delivery_date"]).date() if line.get("delivery_date") else None,
        )
        for number, line in sorted(order.lines.items(), key=lambda kv: int(kv[0]))
        if line.get("article") and line.get("quantity")
    ]
    return m.OrderStatusReply(
        header=header,
        order_id=query.order_id,
        status=OrderStatus(order.status),
        updated_at=order.updated_at.replace(microsecond=0).astimezone(UTC),
        lines=lines,
        sesam2_order_number=order.sesam2_order_number,
    )
