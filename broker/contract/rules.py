"""Business rules that span fields, checked after the schema and the identifier rules.

Each rule returns the field it is about as a model path ("lines[2].amount"); the dialect turns it into
the element path of the document it came in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from broker.model import messages as m
from broker.model.codes import AddressKind, BillingForm


@dataclass(frozen=True)
class Breach:
    rule: str
    field: str  # model path, e.g. "delivery.buffer_store_id" or "lines[2].amount"
    message: str


def check(message: m.Message) -> list[Breach]:
    return [breach for rule in _RULES for breach in rule(message)]


def _addresses(message: m.Message) -> Iterator[Breach]:
    for attr in ("delivery", "address"):
        address = getattr(message, attr, None)
        if isinstance(address, m.Address) and address.kind is AddressKind.BUFFER_STORE and not address.buffer_store_id:
            yield Breach("address.buffer-store-id", f"{attr}.buffer_store_id", "a buffer-store address names the store")


def _patient_delivery(message: m.Message) -> Iterator[Breach]:
    if (
        isinstance(message, m.CustomerOrder)
        and message.delivery.kind is AddressKind.PATIENT_RESIDENCE
        and message.patient is None
    ):
        yield Breach("order.patient", "patient", "a delivery to the patient's residence names the patient")


def _line_numbers(message: m.Message) -> Iterator[Breach]:
    for attr in ("lines", "devices"):
        lines = getattr(message, attr, None) or []
        counts = Counter(getattr(line, "line_number", None) for line in lines)
        for i, line in enumerate(lines, start=1):
            number = getattr(line, "line_number", None)
            if number is not None and counts[number] > 1:
                yield Breach("lines.duplicate-number", f"{attr}[{i}].line_number", f"line number {number} is repeated")


def _invoice_sums(message: m.Message) -> Iterator[Breach]:
    if not isinstance(message, m.InvoiceData):
        return
    for i, line in enumerate(message.lines, start=1):
        if line.amount != (line.unit_price * line.quantity).quantize(Decimal("0.01")):
            yield Breach("invoice.line-amount", f"lines[{i}].amount", "amount is not quantity times unit price")
    total = sum((line.amount for line in message.lines), Decimal("0.00"))
    if message.total_amount != total:
        yield Breach("invoice.total", "total_amount", f"total is not the sum of the lines ({total})")


def _invoice_lines(message: m.Message) -> Iterator[Breach]:
    """Credit lines and rental periods (1.1). A credit line (kreditering) takes back what an earlier invoice
    charged: its quantity is negative (-1 for one device), so its amount is too, and it names the invoice it
    credits; a line that names one is a credit line. A charge is for at least one; nothing is charged for 0.
    A rental period is the days a rental line charges for, both inclusive; only rental lines have one."""
    if not isinstance(message, m.InvoiceData):
        return
    for i, line in enumerate(message.lines, start=1):
        at = f"lines[{i}]"
        if line.quantity == 0:
            yield Breach("invoice.quantity", f"{at}.quantity", "a line charges or credits at least one")
        elif line.quantity < 0 and line.credits_invoice is None:
            yield Breach(
                "invoice.credit",
                f"{at}.credits_invoice",
                "a negative quantity is a credit line: name the invoice it credits",
            )
        elif line.quantity > 0 and line.credits_invoice is not None:
            yield Breach("invoice.credit", f"{at}.quantity", "a credit line's quantity is negative")
        if line.credits_invoice is not None and line.credits_invoice == message.invoice_number:
            yield Breach(
                "invoice.credit", f"{at}.credits_invoice", "a credit line credits an earlier invoice, not its own"
            )
        if (line.rental_from is None) != (line.rental_to is None):
            missing = "rental_to" if line.rental_to is None else "rental_from"
            yield Breach("invoice.rental-period", f"{at}.{missing}", "a rental period has a first and a last day")
        elif line.rental_from is not None and line.rental_to is not None:
            if line.rental_to < line.rental_from:
                yield Breach("invoice.rental-period", f"{at}.rental_to", "the rental period ends before it starts")
            if line.billing_form is not BillingForm.RENTAL:
                yield Breach("invoice.rental-period", f"{at}.rental_from", "only a rental line has a rental period")


_RULES: tuple[Callable[[m.Message], Iterator[Breach]], ...] = (
    _addresses,
    _patient_delivery,
    _line_numbers,
    _invoice_sums,
    _invoice_lines,
)
