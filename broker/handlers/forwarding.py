"""Forwarding: a customer message's translation to SESAM2, a SESAM2 message's to the customer that owns it.

Where each type goes is the routing table's (broker/contract/routing.py). An answer for a customer that
is not configured, or invoice data for a customer without invoice permission, is parked for an operator:
there is nobody it may be delivered to.
"""

from __future__ import annotations

from dataclasses import replace

from broker.contract.dialect import DIALECTS
from broker.contract.routing import Target, routed_types
from broker.envelope import Exchange
from broker.handlers.registry import Context, Registry
from broker.model import messages as m
from broker.model.codes import Side
from broker.translation import forward

_SESAM2, _CUSTOMER = DIALECTS[Side.SESAM2], DIALECTS[Side.CUSTOMER]


def register(registry: Registry) -> None:
    registry.on(*routed_types(Target.SESAM2))(to_sesam2)
    registry.on(*routed_types(Target.CUSTOMER))(to_customer)
    registry.on(m.InvoiceData)(to_invoice_consumers)
    registry.on(m.ArticleRegisterUpdate)(to_every_customer)


def to_sesam2(ctx: Context, message: m.Message) -> None:
    name = type(message).__name__
    ctx.send(forward(message), Exchange.SESAM2_OUT, name)
    ctx.set_status("forwarded")
    ctx.step("translate", "ok", f"to SESAM2 {_SESAM2.binding.by_type[type(message)].names[0]}")


def to_customer(ctx: Context, message: m.Message) -> None:
    customer = message.header.customer_number
    configured = ctx.settings.customer(customer)
    if configured is None:
        ctx.park("route", f"route.unknown-customer: customer number {customer} is not configured; nobody to deliver to")
        return
    if type(message) not in _CUSTOMER.binding_for(configured.schema_version).by_type:
        name, version = type(message).__name__, configured.schema_version
        ctx.park(
            "route", f"route.not-in-dialect: customer {customer} speaks customer dialect {version}, which has no {name}"
        )
        return
    ctx.send(forward(message), Exchange.CUSTOMER_OUT, f"{customer}.{type(message).__name__}")
    ctx.set_status("forwarded")
    ctx.step("route", "ok", f"to customer {customer}")


def to_invoice_consumers(ctx: Context, message: m.InvoiceData) -> None:
    customer = message.header.customer_number
    configured = ctx.settings.customer(customer)
    if configured is None:
        ctx.park("route", f"route.unknown-customer: customer number {customer} is not configured; nobody to deliver to")
        return
    if not configured.invoice:
        ctx.park("route", f"route.no-invoice-permission: customer {customer} has no invoice permission")
        return
    if any(line.credits_invoice for line in message.lines) and not _says(configured.schema_version, "credits_invoice"):
        version = configured.schema_version
        ctx.park("route", f"customer {customer} speaks customer dialect {version}, which has no credit lines")
        return
    ctx.send(forward(message), Exchange.INVOICE, configured.number)
    ctx.set_status("forwarded")
    ctx.step("route", "ok", f"to customer {customer}")


def _says(version: str, line_field: str) -> bool:
    """Whether `version` of the customer dialect has this field of an invoice line: a credit line (negative
    quantity, the invoice it credits) written in 1.0 would break the 1.0 schema the customer validates with."""
    try:
        _CUSTOMER.binding_for(version).element_path(m.InvoiceData, f"lines.{line_field}")
    except KeyError:
        return False
    return True


def to_every_customer(ctx: Context, message: m.ArticleRegisterUpdate) -> None:
    customers = ctx.settings.customers
    for each in customers:
        copy = replace(message, header=replace(message.header, customer_number=each.number))
        broadcast = forward(copy, purpose=f"broadcast/{each.number}")
        ctx.send(broadcast, Exchange.CUSTOMER_OUT, f"{each.number}.ArticleRegisterUpdate")
    ctx.set_status("forwarded")
    ctx.step("route", "ok", f"broadcast to {len(customers)} customer systems")
