"""`hmc-broker invoice export` and `hmc-broker report prescribers`: spreadsheets for people, audited.

Thin entry points: the rules are in broker/handlers/invoices.py and broker/handlers/prescribers.py, the file conventions
in adapters/exports/spreadsheet.py. Every invoice export, and every refusal, leaves an audit row with
the operator, the customer, the month, the format, the row count and the file's SHA-256.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from adapters.exports import sheets, spreadsheet
from broker.config import Settings
from broker.handlers import invoices
from broker.store import Session, prescriber_register, sessionmaker
from replay import audit

Format = Annotated[str, typer.Option("--format", "-f", help="xlsx or csv (UTF-8 with BOM, semicolons, decimal comma)")]
Out = Annotated[Path | None, typer.Option("--out", "-o", help="file to write (default: a name in this directory)")]
Customer = Annotated[str, typer.Option("--customer", "-c", help="customer number")]
AsJson = Annotated[bool, typer.Option("--json", help="also print what was written as one JSON object on stdout")]


def _err() -> Console:
    return Console(file=sys.stderr, width=None if sys.stderr.isatty() else 240)


def _store(settings: Settings) -> sessionmaker[Session]:
    from broker.bootstrap import store

    return store(settings)


def _format(value: str) -> spreadsheet.Format:
    if value not in spreadsheet.FORMATS:
        _err().print(f"[red]error:[/red] --format {escape(value)}: expected xlsx or csv")
        raise typer.Exit(2)
    return value


def _save(session: Session, path: Path, data: bytes, rows: int) -> spreadsheet.Written:
    """Write the file, then commit its audit row; a failed commit takes the file away again."""
    written = spreadsheet.place(path, data, rows)
    try:
        session.commit()
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return written


# ---------------------------------------------------------------- invoice data

invoice_app = typer.Typer(help="Monthly invoice data (fakturaunderlag) from SESAM2.", no_args_is_help=True)


@invoice_app.command("export")
def invoice_export(
    customer: Customer,
    month: Annotated[str, typer.Option("--month", "-m", help="the invoice period, YYYY-MM")],
    operator: Annotated[str, typer.Option("--operator", help="your user id; must be among the invoice_exporters")],
    fmt: Format = "xlsx",
    out: Out = None,
    reason: Annotated[str, typer.Option("--reason", help="recorded in the audit trail")] = "monthly invoice export",
    as_json: AsJson = False,
) -> None:
    """Export a customer's invoice data for a month: detail lines, totals per article and billing form.

    Only operators granted invoice permission for the customer may; a refusal is audited and writes nothing.
    """
    chosen_format = _format(fmt)
    settings = Settings.from_env()
    actor = audit.Actor(operator.strip(), reason.strip() or "monthly invoice export")
    details: dict[str, Any] = {"customer": customer, "month": month, "format": chosen_format}
    with _store(settings)() as session:
        try:
            invoices.check_month(month)
            invoices.authorise(settings, customer, actor.operator)
            chosen = invoices.latest(session, customer, month)
        except invoices.ExportRefused as e:
            audit.record(session, actor, "invoice-export-refused", {**details, "refusal": str(e)})
            session.commit()
            _err().print(f"[red]error:[/red] {escape(str(e))}; nothing was written")
            raise typer.Exit(2) from None
        invoice = chosen.invoice
        tables = sheets.invoice_tables(invoice)
        data = spreadsheet.render(tables, chosen_format)
        path = out or Path(f"fakturaunderlag-{customer}-{month}.{chosen_format}")
        rows = len(invoice.lines)
        audit.record(
            session,
            actor,
            "invoice-export",
            {
                **details,
                "invoice_number": invoice.invoice_number,
                "message_id": invoice.message_id,
                "rows": rows,
                "sha256": spreadsheet.sha256(data),
                "file": str(path),
                "older_versions": chosen.others,
            },
        )
        _save(session, path, data, rows)
    _err().print(
        f"wrote {path}: invoice {invoice.invoice_number}, {rows} line(s), total {invoice.total_amount}"
        + (f" (the latest of {chosen.others + 1} received for {month})" if chosen.others else "")
    )
    if as_json:
        written = {"file": str(path), "customer": customer, "month": month, "invoice_number": invoice.invoice_number}
        typer.echo(json.dumps({**written, "rows": rows, "total": invoice.total_amount, "older": chosen.others}))


# ---------------------------------------------------------------- the prescriber register

report_app = typer.Typer(help="Reports from the message store.", no_args_is_help=True)


@report_app.command("prescribers")
def report_prescribers(
    customer: Customer,
    fmt: Format = "xlsx",
    out: Out = None,
    operator: Annotated[str | None, typer.Option("--operator", help="your user id (default: the OS user)")] = None,
    as_json: AsJson = False,
) -> None:
    """The prescribers, orderers and fault reporters seen for a customer: HSA-id, name, unit, first and last seen.

    For a manager's review that the users linked to a unit are the right ones. Exports are audited.
    """
    chosen_format = _format(fmt)
    settings = Settings.from_env()
    if settings.customer(customer) is None:
        # Like invoice export: an unknown customer is an error, not an empty spreadsheet.
        _err().print(
            f"[red]error:[/red] customer {escape(customer)} is not configured (HMC_CUSTOMERS); nothing was written"
        )
        raise typer.Exit(2)
    with _store(settings)() as session:
        rows = prescriber_register.listing(session, customer)
        data = spreadsheet.render(sheets.prescriber_tables(rows), chosen_format)
        path = out or Path(f"forskrivare-{customer}.{chosen_format}")
        actor = audit.Actor(operator or audit.Actor("", "").os_user, "prescriber register export")
        details = {"customer": customer, "format": chosen_format, "rows": len(rows), "file": str(path)}
        audit.record(session, actor, "register-export", {**details, "sha256": spreadsheet.sha256(data)})
        _save(session, path, data, len(rows))
    units = len({r.unit_hsa_id for r in rows})
    _err().print(f"wrote {path}: {len(rows)} row(s) in {units} unit(s) for customer {customer}")
    if as_json:
        typer.echo(json.dumps({"file": str(path), "customer": customer, "rows": len(rows), "units": units}))


def register(app: typer.Typer) -> None:
    """Add the exports to the `hmc-broker` command."""
    app.add_typer(invoice_app, name="invoice")
    app.add_typer(report_app, name="report")
