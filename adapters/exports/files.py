"""The export files themselves, audited: what `hmc-broker invoice export` and `report prescribers` write, and
what the console (console/) sends as downloads. The caller commits the audit row once the file is placed or
sent; a refusal's audit row is committed here, before the refusal is raised."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from adapters.exports import sheets, spreadsheet
from broker.config import Settings
from broker.handlers import invoices
from broker.store import Session, prescriber_register
from broker.store import accounts as account_rows
from broker.store.unit_of_work import now
from replay import audit


@dataclass(frozen=True)
class Export:
    name: str  # the file's default name
    data: bytes
    rows: int
    said: str  # one line for the operator
    details: dict[str, Any]


def account_roles(session: Session, settings: Settings, name: str) -> list[str] | None:
    """The roles of an enabled account of the store, None when there is no such account, it is disabled, or
    it is dormant (unused for HMC_CONSOLE_DORMANT_DAYS: broker/store/accounts.py's rule, as at a console login):
    what the CLI's --operator is checked against (the console has them from the login). A dormant account is
    disabled here, as the console disables it at its next login; the refusal's audit row commits it."""
    row = account_rows.get(session, name)
    if row is None or row.disabled:
        return None
    if account_rows.dormant(row, settings.dormant_after, now()):
        row.disabled = True
        return None
    return [str(r) for r in row.roles]


def invoice_data(
    session: Session,
    settings: Settings,
    actor: audit.Actor,
    customer: str,
    month: str,
    fmt: spreadsheet.Format,
    *,
    roles: Collection[str] | None,
    where: str | None = None,
) -> Export:
    """A customer's invoice data of a month (the latest received): detail lines, totals per article and
    billing form. `roles`: those of the exporting account (None: it has no enabled account), which must
    grant the customer's invoice data (broker/handlers/invoices.py, may_export)."""
    details: dict[str, Any] = {"customer": customer, "month": month, "format": fmt}
    try:
        invoices.check_month(month)
        invoices.authorise(settings, customer, actor.operator, roles)
        chosen = invoices.latest(session, customer, month)
    except invoices.ExportRefused as e:
        audit.record(session, actor, "invoice-export-refused", {**details, "refusal": str(e)})
        session.commit()
        raise
    invoice = chosen.invoice
    data = spreadsheet.render(sheets.invoice_tables(invoice), fmt)
    name = f"fakturaunderlag-{customer}-{month}.{fmt}"
    rows = len(invoice.lines)
    details = {
        **details,
        "invoice_number": invoice.invoice_number,
        "message_id": invoice.message_id,
        "rows": rows,
        "sha256": spreadsheet.sha256(data),
        "file": where or name,
        "older_versions": chosen.others,
    }
    audit.record(session, actor, "invoice-export", details)
    said = f"invoice {invoice.invoice_number}, {rows} line(s), total {invoice.total_amount}" + (
        f" (the latest of {chosen.others + 1} received for {month})" if chosen.others else ""
    )
    return Export(name, data, rows, said, {**details, "total": invoice.total_amount})


def prescribers(
    session: Session, settings: Settings, actor: audit.Actor, customer: str, fmt: spreadsheet.Format, where: str | None
) -> Export:
    """The prescribers, orderers and fault reporters seen for a customer."""
    if settings.customer(customer) is None:
        # Like invoice export: an unknown customer is an error, not an empty spreadsheet.
        raise invoices.ExportRefused(f"customer {customer} is not configured (HMC_CUSTOMERS)")
    rows = prescriber_register.listing(session, customer)
    data = spreadsheet.render(sheets.prescriber_tables(rows), fmt)
    name = f"forskrivare-{customer}.{fmt}"
    details = {"customer": customer, "format": fmt, "rows": len(rows), "file": where or name}
    audit.record(session, actor, "register-export", {**details, "sha256": spreadsheet.sha256(data)})
    units = len({r.unit_hsa_id for r in rows})
    return Export(name, data, len(rows), f"{len(rows)} row(s) in {units} unit(s)", {**details, "units": units})
