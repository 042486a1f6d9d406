"""The spreadsheets operators export: invoice data and the prescriber register as sheets of rows.

Column headings are Swedish, as the region's finance and HMC staff read them; spreadsheet.py writes the
sheets as xlsx or CSV.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal

from adapters.exports.spreadsheet import Cell, Table
from broker.handlers import invoices, prescribers
from broker.store.tables import InvoiceRow, PrescriberRow


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def invoice_tables(invoice: InvoiceRow) -> list[Table]:
    """The detail lines, totals per article and per billing form, and the invoice's total."""
    lines = invoice.lines
    detail = [
        (
            invoice.invoice_number,
            invoice.period,
            line["order_id"],
            line["sesam2_order_number"],
            line["article_number"],
            line["article_name"],
            invoices.BILLING_FORMS.get(line["billing_form"], line["billing_form"]),
            int(line["quantity"]),
            Decimal(line["unit_price"]),
            Decimal(line["amount"]),
            _day(line.get("delivered_on")),
            line.get("unit_hsa_id"),
            line.get("individual_number"),
            _day(line.get("rental_from")),
            _day(line.get("rental_to")),
            line.get("credits_invoice"),
            line.get("cost_centre"),
        )
        for line in lines
    ]
    per_article: dict[tuple[str, str], tuple[int, Decimal]] = {}
    per_form: dict[str, tuple[int, Decimal]] = {}
    for line in lines:
        quantity, amount = int(line["quantity"]), Decimal(line["amount"])
        key = (line["article_number"], line["article_name"])
        q, a = per_article.get(key, (0, Decimal(0)))
        per_article[key] = (q + quantity, a + amount)
        form = invoices.BILLING_FORMS.get(line["billing_form"], line["billing_form"])
        q, a = per_form.get(form, (0, Decimal(0)))
        per_form[form] = (q + quantity, a + amount)
    lines_total = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
    stated = Decimal(invoice.total_amount)
    summary: list[tuple[str, Cell]] = [
        ("Fakturanummer", invoice.invoice_number),
        ("Kund", invoice.customer_number),
        ("Period", invoice.period),
        ("Antal rader", len(lines)),
        ("Summa rader", lines_total),
        ("Fakturans totalbelopp", stated),
        ("Stämmer", "ja" if lines_total == stated else "NEJ: raderna summerar inte till totalbeloppet"),
    ]
    return [
        Table(
            "Fakturarader",
            (
                "Fakturanummer",
                "Period",
                "Order",
                "HMC-ordernummer",
                "Artikelnummer",
                "Benämning",
                "Debiteringsform",
                "Antal",
                "À-pris",
                "Belopp",
                "Leveransdatum",
                "Enhet (HSA-id)",
                "Individnummer",
                "Hyra från",
                "Hyra till",
                "Krediterar faktura",  # a credit line: negative quantity and amount
                "Kostnadsställe",
            ),
            detail,
        ),
        Table(
            "Summa per artikel",
            ("Artikelnummer", "Benämning", "Antal", "Belopp"),
            [(a, n, q, amount) for (a, n), (q, amount) in sorted(per_article.items())],
        ),
        Table(
            "Summa per debiteringsform",
            ("Debiteringsform", "Antal", "Belopp"),
            [(f, q, amount) for f, (q, amount) in sorted(per_form.items())],
        ),
        Table("Summa", ("Uppgift", "Värde"), summary),
    ]


def prescriber_tables(rows: Sequence[PrescriberRow]) -> list[Table]:
    return [
        Table(
            "Förskrivare och beställare",
            (
                "Kund",
                "Enhet (HSA-id)",
                "HSA-id",
                "Namn",
                "Roll",
                "Först sedd",
                "Senast sedd",
                "Antal meddelanden",
                # Customer dialect 1.1's (empty for who was seen in 1.0 only); last, so that the columns a
                # reader of the earlier export relies on keep their places.
                "Förskrivarkod",
                "Yrke",
            ),
            [
                (
                    r.customer_number,
                    r.unit_hsa_id or None,
                    r.hsa_id,
                    r.name,
                    prescribers.ROLES.get(r.role, r.role),
                    _utc(r.first_seen),
                    _utc(r.last_seen),
                    r.message_count,
                    r.prescriber_code,
                    prescribers.profession_name(r.profession),
                )
                for r in rows
            ],
        )
    ]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
