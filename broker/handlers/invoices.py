"""Invoice data (fakturaunderlag): kept per customer and month, exported only by those allowed to.

SESAM2 sends InvoiceData monthly per customer. The pipeline routes it to hmc.invoice <customerNumber>
(only for customers with invoice permission) and keep() stores it in the invoices table, beyond the
payload retention, with exact decimal amounts. The lines carry no patient identifiers.

An export needs three things, checked before anything is written: the customer is configured with
invoice permission (invoice = true), the one exporting holds the role invoice:CUSTOMER (or admin) on an
enabled account of the store (table accounts: `hmc-broker users`, or single sign-on), and invoice data for
the month is stored. The accounts are the one source of who may export: the console checks the logged-in
account's roles, `hmc-broker invoice export` the roles of the account it names (--operator, by default the
OS user's name), through may_export() below. When SESAM2 sent several for the same customer and month (a
corrected resend), the latest received is exported, and the export says so.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from broker.config import Settings
from broker.handlers.registry import Context, Registry
from broker.model import messages as m
from broker.model.codes import BillingForm
from broker.store.invoices import Invoices
from broker.store.tables import InvoiceRow

BILLING_FORMS = {  # as the region's finance staff read them
    BillingForm.RENTAL.value: "Hyra",
    BillingForm.SALE_WITH_RETURN.value: "Försäljning med återtagande",
    BillingForm.SALE.value: "Försäljning",
}


class ExportRefused(PermissionError):
    """An invoice export that may not or cannot be made: the reason says which and what to do."""


def register(registry: Registry) -> None:
    registry.on(m.InvoiceData)(keep)


def keep(ctx: Context, message: m.InvoiceData) -> None:
    """Store a valid InvoiceData once per message id (a replay does not store it twice)."""
    if not message.header.customer_number:
        return
    uow, row = ctx.uow, ctx.row
    if uow.invoices.kept(message.header.message_id):
        return
    uow.flush()  # the message row's id links the invoice (monthly: one flush more is nothing)
    uow.invoices.add(
        customer_number=message.header.customer_number,
        period=message.period.strftime("%Y-%m"),
        invoice_number=message.invoice_number,
        total_amount=str(message.total_amount),
        lines=[_line(line) for line in message.lines],
        message_pk=row.id,
        message_id=message.header.message_id,
    )
    uow.event(row, "invoice", "ok", f"invoice data {message.invoice_number} for {message.period:%Y-%m} kept")


def _line(line: m.InvoiceLine) -> dict[str, Any]:
    return {
        "order_id": line.order_id,
        "sesam2_order_number": line.sesam2_order_number,
        "article_number": line.article_number,
        "article_name": line.article_name,
        "billing_form": line.billing_form.value,
        "quantity": line.quantity,
        "unit_price": str(line.unit_price),
        "amount": str(line.amount),
        "delivered_on": line.delivered_on.isoformat() if line.delivered_on else None,
        "unit_hsa_id": line.unit_hsa_id,
        "individual_number": line.individual_number,
        "rental_from": line.rental_from.isoformat() if line.rental_from else None,
        "rental_to": line.rental_to.isoformat() if line.rental_to else None,
        "credits_invoice": line.credits_invoice,
        "cost_centre": line.cost_centre,
    }


# ---------------------------------------------------------------- export


def check_month(month: str) -> str:
    try:
        date.fromisoformat(f"{month}-01")
    except ValueError:
        raise ExportRefused(f"--month {month!r} is not a month: expected YYYY-MM, e.g. 2026-10") from None
    if len(month) != 7:
        raise ExportRefused(f"--month {month!r} is not a month: expected YYYY-MM, e.g. 2026-10")
    return month


ADMIN_ROLE = "admin"  # every right (console/accounts.py)
INVOICE_ROLE = "invoice:"  # invoice:1001 exports customer 1001's invoice data


def invoice_role(customer_number: str) -> str:
    return f"{INVOICE_ROLE}{customer_number}"


def may_export(roles: Collection[str], customer_number: str) -> bool:
    """Whether an account with these roles may export this customer's invoice data."""
    return ADMIN_ROLE in roles or invoice_role(customer_number) in roles


def authorise(settings: Settings, customer_number: str, who: str, roles: Collection[str] | None) -> None:
    """Refuse unless the customer has invoice permission and `who` may export its invoice data: `roles` are
    those of who's enabled account, None when there is none (or it is disabled)."""
    customer = settings.customer(customer_number)
    if customer is None:
        raise ExportRefused(f"customer {customer_number} is not configured")
    if not customer.invoice:
        raise ExportRefused(f"customer {customer_number} has no invoice permission (invoice = true in the config)")
    role = invoice_role(customer_number)
    if roles is None:
        raise ExportRefused(
            f"{who} may not export invoice data of customer {customer_number}: no enabled account {who} in the"
            f" store (an admin grants it: hmc-broker users add {who} --role {role}, or users roles; one disabled"
            " or unused for HMC_CONSOLE_DORMANT_DAYS is enabled again with users passwd)"
        )
    if not may_export(roles, customer_number):
        raise ExportRefused(
            f"{who} may not export invoice data of customer {customer_number}: the role {role} is needed"
            f" (an admin grants it: hmc-broker users roles {who} --role {role} ...)"
        )


@dataclass(frozen=True)
class Chosen:
    invoice: InvoiceRow
    others: int  # further invoice data stored for the same customer and month (older)


def latest(session: Session, customer_number: str, month: str) -> Chosen:
    found = Invoices(session).of_month(customer_number, month)
    if not found:
        raise ExportRefused(f"no invoice data for customer {customer_number} and {month} in the store")
    return Chosen(found[0], len(found) - 1)
