"""`hmc-broker invoice export` and `hmc-broker report prescribers`: spreadsheets for people, audited.

Thin entry points: the rules are in broker/handlers/invoices.py and broker/handlers/prescribers.py, the file conventions
in adapters/exports/spreadsheet.py. Every invoice export, and every refusal, leaves an audit row with
the operator, the customer, the month, the format, the row count and the file's SHA-256.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from adapters.exports import files, spreadsheet
from broker.config import Settings
from broker.handlers import invoices
from broker.store import Session, sessionmaker
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


def _written(session: Session, out: Path | None, make: Callable[[], files.Export]) -> tuple[files.Export, Path]:
    """Make the export and write it (to `out`, or its own name here); a refusal is one line and exit 2."""
    try:
        made = make()
    except invoices.ExportRefused as e:
        _err().print(f"[red]error:[/red] {escape(str(e))}; nothing was written")
        raise typer.Exit(2) from None
    path = out or Path(made.name)
    _save(session, path, made.data, made.rows)
    return made, path


# ---------------------------------------------------------------- invoice data

invoice_app = typer.Typer(help="Monthly invoice data (fakturaunderlag) from SESAM2.", no_args_is_help=True)


@invoice_app.command("export")
def invoice_export(
    customer: Customer,
    month: Annotated[str, typer.Option("--month", "-m", help="the invoice period, YYYY-MM")],
    operator: Annotated[
        str | None,
        typer.Option(
            "--operator",
            help="the account (hmc-broker users) whose role invoice:CUSTOMER allows it (default: the OS user)",
        ),
    ] = None,
    fmt: Format = "xlsx",
    out: Out = None,
    reason: Annotated[str, typer.Option("--reason", help="recorded in the audit trail")] = "monthly invoice export",
    as_json: AsJson = False,
) -> None:
    """Export a customer's invoice data for a month: detail lines, totals per article and billing form.

    Only an enabled account of the store with the role invoice:CUSTOMER (or admin) may, the same accounts
    and roles as the console's; a refusal is audited and writes nothing.
    """
    chosen_format = _format(fmt)
    settings = Settings.from_env()
    name = (operator or audit.os_user_name()).strip()
    actor = audit.Actor(name, reason.strip() or "monthly invoice export")
    with _store(settings)() as session:
        where = str(out) if out else None
        roles = files.account_roles(session, settings, name)
        made, path = _written(
            session,
            out,
            lambda: files.invoice_data(
                session, settings, actor, customer, month, chosen_format, roles=roles, where=where
            ),
        )
    _err().print(f"wrote {path}: {made.said}")
    if as_json:
        d = made.details
        written = {"file": str(path), "customer": customer, "month": month, "invoice_number": d["invoice_number"]}
        typer.echo(json.dumps({**written, "rows": made.rows, "total": d["total"], "older": d["older_versions"]}))


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
    """The prescribers, orderers and fault reporters seen for a customer: HSA-id, name, unit, first and last seen,
    and a prescriber's förskrivarkod and profession where 1.1 orders stated them.

    For a manager's review that the users linked to a unit are the right ones. Exports are audited.
    """
    chosen_format = _format(fmt)
    settings = Settings.from_env()
    actor = audit.Actor(operator or audit.os_user_name(), "prescriber register export")
    with _store(settings)() as session:
        where = str(out) if out else None
        made, path = _written(
            session, out, lambda: files.prescribers(session, settings, actor, customer, chosen_format, where)
        )
    _err().print(f"wrote {path}: {made.said} for customer {customer}")
    if as_json:
        d = made.details
        typer.echo(json.dumps({"file": str(path), "customer": customer, "rows": made.rows, "units": d["units"]}))


def register(app: typer.Typer) -> None:
    """Add the exports to the `hmc-broker` command."""
    app.add_typer(invoice_app, name="invoice")
    app.add_typer(report_app, name="report")
