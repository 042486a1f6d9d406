"""Routing per message type, one table beside the mapping (mapping.py says how a type is written, this
table says where it goes and which order it is about).

A type's route decides:
- where the broker sends its translation: SESAM2 (hmc.sesam2.out, key `<MessageType>`), the owning
  customer (hmc.customer.out, key `<customerNumber>.<MessageType>`), the invoice exchange (key
  `<customerNumber>`, only for customers with invoice permission), every customer system (broadcast), or
  nowhere because the broker answers it itself (OrderStatusQuery);
- which field names the customer's order (or work order, pickup, report) the message is about: the
  order view's key and the AMQP correlation_id;
- whether it opens an entry in the order view.

Broker-made types (OrderStatusReply, Rejection) have no route: the broker addresses them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from broker.model import messages as m


class Target(StrEnum):
    SESAM2 = "sesam2"  # hmc.sesam2.out <MessageType>
    CUSTOMER = "customer"  # hmc.customer.out <customerNumber>.<MessageType>
    INVOICE = "invoice"  # hmc.invoice <customerNumber>, with invoice permission only
    BROADCAST = "broadcast"  # hmc.customer.out <customerNumber>.<MessageType> for every customer system
    BROKER = "broker"  # answered by the broker itself, not forwarded


@dataclass(frozen=True)
class Route:
    target: Target
    reference: str | None = None  # the field naming the customer's order this type is about
    opens_order: bool = False


def _in(reference: str | None = None, *, opens: bool = False) -> Route:
    return Route(Target.SESAM2, reference, opens)


def _out(reference: str | None = None) -> Route:
    return Route(Target.CUSTOMER, reference)


ROUTES: dict[type[m.Message], Route] = {
    # customer system -> SESAM2
    m.CustomerOrder: _in("order_id", opens=True),
    m.BufferWithdrawal: _in("withdrawal_id", opens=True),
    m.BufferStockReport: _in(),
    m.WorkOrder: _in("work_order_id", opens=True),
    m.PickupOrder: _in("pickup_id", opens=True),
    m.ReturnReceipt: _in("pickup_id"),
    m.FaultReport: _in("report_id", opens=True),
    m.OrthopaedicReferral: _in("referral_id", opens=True),
    m.PatientAddressReply: _in(),
    m.OrderWithdrawal: _in("order_id"),
    m.OrderStatusQuery: Route(Target.BROKER, "order_id"),
    # SESAM2 -> customer system
    m.OrderConfirmation: _out("order_id"),
    m.DeliveryDelay: _out("order_id"),
    m.OrderCancelled: _out("order_id"),
    m.DeliveryReceipt: _out("order_id"),
    m.DeliveryNote: _out("order_id"),
    m.WorkOrderCompleted: _out("work_order_id"),
    m.WorkOrderCancelled: _out("work_order_id"),
    m.PickupConfirmation: _out("pickup_id"),
    m.PickupCancelled: _out("pickup_id"),
    m.FaultReportAnswer: _out("report_id"),
    m.OrthopaedicReferralAnswer: _out("referral_id"),
    m.PatientAddressQuery: _out(),
    m.InvoiceData: Route(Target.INVOICE),
    m.ArticleRegisterUpdate: Route(Target.BROADCAST),
}


def route(message_type: type[m.Message]) -> Route | None:
    return ROUTES.get(message_type)


def routed_types(*targets: Target) -> list[type[m.Message]]:
    return [t for t, r in ROUTES.items() if r.target in targets]


def opening_types() -> list[type[m.Message]]:
    return [t for t, r in ROUTES.items() if r.opens_order]


def reference(message: m.Message) -> str | None:
    """The customer's reference of the order this message is about (None: not about one order)."""
    found = ROUTES.get(type(message))
    attr = found.reference if found else None
    return str(getattr(message, attr)) if attr else message.header.correlation_id
