"""Hypothesis strategies for the domain model, derived from its field annotations.

Every generated message is valid by construction (synthetic identifiers with correct check digits),
so properties can be stated over "any valid message".
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Union
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from broker.contract.identifiers import COUNTY_CODES, ISO9999_CLASSES
from broker.contract.mapping import TYPE_MAPS
from broker.model.codes import AddressKind, BillingForm
from broker.model.messages import (
    Address,
    ArticleRegisterUpdate,
    CustomerOrder,
    Header,
    InvoiceData,
    InvoiceLine,
    Message,
    Patient,
)
from broker.model.types import Identifier, IdKind, Items, MonthPrecision, Range, Text

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def gs1_digit(body: str) -> str:
    total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
    return str((10 - total % 10) % 10)


@st.composite
def personnummer(draw: st.DrawFn, coordination: bool = False) -> str:
    born = draw(st.dates(date(1901, 1, 1), date(2024, 12, 31)))
    serial = draw(st.integers(980, 999))  # Skatteverket's range for test persons
    day = born.day + (60 if coordination else 0)
    body = f"{born:%y%m}{day:02d}{serial:03d}"
    return f"{born.year // 100}{body}{luhn_digit(body)}"


@st.composite
def organisation_number(draw: st.DrawFn) -> str:
    body = draw(st.from_regex(r"[0-9]{2}[2-9][0-9]{6}", fullmatch=True))
    return f"{body[:6]}-{body[6:]}{luhn_digit(body)}"


@st.composite
def hsa_id(draw: st.DrawFn) -> str:
    org = draw(organisation_number()).replace("-", "")
    return f"SE{org}-{draw(st.from_regex(r'[A-Z0-9]{1,18}', fullmatch=True))}"


@st.composite
def gln(draw: st.DrawFn) -> str:
    body = "73" + draw(st.from_regex(r"[0-9]{10}", fullmatch=True))
    return body + gs1_digit(body)


@st.composite
def iso9999(draw: st.DrawFn) -> str:
    first = int(draw(st.sampled_from(sorted(ISO9999_CLASSES))))
    rest = draw(st.lists(st.integers(0, 99), max_size=2))
    return " ".join(f"{p:02d}" for p in [first, *rest])


IDENTIFIERS: dict[IdKind, st.SearchStrategy[str]] = {
    IdKind.PATIENT: st.one_of(
        personnummer(),
        personnummer(coordination=True),
        st.from_regex(r"99[0-9]{10}", fullmatch=True),
    ),
    IdKind.HSA_ID: hsa_id(),
    IdKind.ORGANISATION_NUMBER: organisation_number(),
    IdKind.GLN: gln(),
    IdKind.CUSTOMER_NUMBER: st.from_regex(r"[0-9]{4,8}", fullmatch=True),
    IdKind.ARTICLE_NUMBER: st.from_regex(r"[0-9A-Z][0-9A-Z-]{2,19}", fullmatch=True),
    IdKind.ISO9999: iso9999(),
    IdKind.INDIVIDUAL_NUMBER: st.from_regex(r"[0-9A-Z][0-9A-Z/-]{0,29}", fullmatch=True),
    IdKind.MESSAGE_ID: st.uuids().map(str),
    IdKind.REFERENCE: st.from_regex(r"[0-9A-Za-z][0-9A-Za-z._/-]{0,34}", fullmatch=True),
    IdKind.SESAM2_ORDER_NUMBER: st.from_regex(r"[0-9]{10}", fullmatch=True),
    IdKind.POSTAL_CODE: st.from_regex(r"[1-9][0-9]{2} [0-9]{2}", fullmatch=True),
    IdKind.MUNICIPALITY_CODE: st.tuples(st.sampled_from(sorted(COUNTY_CODES)), st.integers(1, 99)).map(
        lambda c: f"{c[0]}{c[1]:02d}"
    ),
    IdKind.PRESCRIBER_CODE: st.from_regex(r"[0-9A-Z]{1,12}", fullmatch=True),
}

# Letters a Swedish text holds, plus the characters XML must escape.
TEXT_ALPHABET = "abcdefghijklmnopqrstuvwxyzåäöéüABCDEFGHIJKLMNOPQRSTUVWXYZÅÄÖ0123456789 .,-:;/()'\"&<>%#"


def _unambiguous(moment: datetime) -> bool:
    """SESAM2 writes Swedish local time; the repeated hour when DST ends cannot round-trip."""
    local = moment.astimezone(STOCKHOLM)
    return local.replace(fold=1 - local.fold).utcoffset() == local.utcoffset()


datetimes = (
    st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=st.sampled_from([UTC, STOCKHOLM]))
    .map(lambda d: d.replace(microsecond=0))
    .filter(_unambiguous)
)
amounts = st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False)


def for_hint(hint: Any) -> st.SearchStrategy[Any]:
    optional = False
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional, hint = True, args[0]
    meta: tuple[Any, ...] = ()
    if typing.get_origin(hint) is typing.Annotated:
        hint, *rest = typing.get_args(hint)
        meta = tuple(rest)
    strategy = _base(hint, meta)
    return st.none() | strategy if optional else strategy


def _base(hint: Any, meta: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    ident = next((m for m in meta if isinstance(m, Identifier)), None)
    if ident is not None:
        return IDENTIFIERS[ident.kind]
    if hint is str:
        text = next((m for m in meta if isinstance(m, Text)), Text(4000))
        return st.text(TEXT_ALPHABET, min_size=1, max_size=min(text.max_length, 60)).filter(lambda t: not t.isspace())
    if hint is bool:
        return st.booleans()
    if hint is int:
        rng = next((m for m in meta if isinstance(m, Range)), Range(0, 10**6))
        return st.integers(rng.min, rng.max)
    if hint is Decimal:
        return amounts
    if hint is datetime:
        return datetimes
    if hint is date:
        days = st.dates(date(2000, 1, 1), date(2099, 12, 31))
        if any(isinstance(m, MonthPrecision) for m in meta):
            return days.map(lambda d: d.replace(day=1))
        return days
    if isinstance(hint, type) and issubclass(hint, StrEnum):
        return st.sampled_from(list(hint))
    if typing.get_origin(hint) is list:
        bounds = next((m for m in meta if isinstance(m, Items)), Items())
        return st.lists(for_hint(typing.get_args(hint)[0]), min_size=bounds.min, max_size=min(bounds.max, 3))
    if dataclasses.is_dataclass(hint):
        return objects(hint)
    raise TypeError(f"no strategy for {hint!r}")


def objects(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: for_hint(hints[f.name]) for f in dataclasses.fields(cls) if f.init}
    return st.builds(cls, **fields)


def _conform(message: Any) -> Any:
    """Make a generated message keep the cross-field business rules (broker/contract/rules.py)."""
    changes: dict[str, Any] = {}
    for attr in ("lines", "devices"):
        lines = getattr(message, attr, None)
        if lines and hasattr(lines[0], "line_number"):
            changes[attr] = [dataclasses.replace(line, line_number=i) for i, line in enumerate(lines, start=1)]
    for attr in ("delivery", "address"):
        address = getattr(message, attr, None)
        if isinstance(address, Address) and address.kind is AddressKind.BUFFER_STORE and not address.buffer_store_id:
            changes[attr] = dataclasses.replace(address, buffer_store_id="BUF-1")
    if isinstance(message, CustomerOrder) and message.delivery.kind is AddressKind.PATIENT_RESIDENCE:
        changes["patient"] = message.patient or Patient(patient_id="191212121212", name="Tolvan Tolvansson")
    if isinstance(message, InvoiceData):
        lines = [
            dataclasses.replace(x, amount=(x.unit_price * x.quantity).quantize(Decimal("0.01")))
            for x in (_invoice_line(message.invoice_number, x) for x in message.lines)
        ]
        lines = [x for x in lines if abs(x.amount) < 10**11]
        first = _invoice_line(message.invoice_number, dataclasses.replace(message.lines[0], quantity=1))
        lines = lines or [dataclasses.replace(first, amount=first.unit_price)]
        changes["lines"] = lines
        changes["total_amount"] = sum((x.amount for x in lines), Decimal("0.00"))
    return dataclasses.replace(message, **changes) if changes else message


def _invoice_line(invoice_number: str, line: InvoiceLine) -> InvoiceLine:
    """A line that keeps the credit and rental rules: a negative quantity names another invoice it credits,
    a positive one none; only a rental line has a rental period, whole and in order."""
    quantity = line.quantity or 1
    credits = (line.credits_invoice if line.credits_invoice != invoice_number else None) if quantity < 0 else None
    if quantity < 0 and credits is None:
        credits = f"{invoice_number[:30]}-K"
    first, last = line.rental_from, line.rental_to
    if line.billing_form is not BillingForm.RENTAL or first is None or last is None:
        first = last = None
    elif last < first:
        first, last = last, first
    return dataclasses.replace(line, quantity=quantity, credits_invoice=credits, rental_from=first, rental_to=last)


def messages(cls: type[Message]) -> st.SearchStrategy[Message]:
    """Any valid message of `cls`; the header names its type as a sender would."""
    since = TYPE_MAPS[cls].since  # the version that has the type
    headers = objects(Header).map(
        lambda h: dataclasses.replace(h, message_type=cls.__name__, schema_version=since, forwarded_at=None)
    )
    if cls is not ArticleRegisterUpdate:  # only a broadcast may leave the customer number out
        headers = headers.filter(lambda h: h.customer_number is not None)
    return objects(cls).map(_conform).flatmap(lambda m: headers.map(lambda h: dataclasses.replace(m, header=h)))


def business_view(message: Message) -> Message:
    """What translation must keep: the envelope fields it renews are blanked (it keeps SentAt and SenderSystem,
    the origin: tests/unit/test_fixtures_valid.py checks those)."""
    blank = dataclasses.replace(message.header, message_id="", causation_id=None, forwarded_at=None)
    return dataclasses.replace(message, header=blank)
