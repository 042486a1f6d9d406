"""Cross-field business rules: each breach is refused with its rule and the element path in the dialect."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.contract.dialect import read

VALID = Path(__file__).resolve().parents[1] / "fixtures"


def _edited(name: str, old: bytes, new: bytes, count: int = 1) -> bytes:
    body = (VALID / name).read_bytes()
    assert old in body, f"{name} no longer holds {old!r}"
    return body.replace(old, new, count)


@pytest.mark.parametrize(
    ("name", "old", "new", "rule", "path"),
    [
        (
            "customer/valid/CustomerOrder-buffer-store.xml",
            b"<BufferStoreId>",
            b"<!--",
            "address.buffer-store-id",
            "/CustomerOrder/DeliveryAddress/BufferStoreId",
        ),
        (
            "customer/valid/InvoiceData-2026-10.xml",
            b"<TotalAmount>4205.25</TotalAmount>",
            b"<TotalAmount>4205.26</TotalAmount>",
            "invoice.total",
            "/InvoiceData/TotalAmount",
        ),
        (
            "sesam2/valid/InvoiceData-2026-10.xml",
            b"<SUMMAORE>1455150</SUMMAORE>",
            b"<SUMMAORE>1455151</SUMMAORE>",
            "invoice.total",
            "/FAKTUNDERLAG/HEAD/SUMMAORE",
        ),
    ],
)
def test_a_breach_names_its_rule_and_element(name: str, old: bytes, new: bytes, rule: str, path: str) -> None:
    body = _edited(name, old, new)
    if new == b"<!--":  # comment the element out
        body = body.replace(b"</BufferStoreId>", b"-->", 1)
    parsed = read(body)
    assert parsed.message is None
    assert [(p.rule, p.path) for p in parsed.problems] == [(rule, path)]


def test_a_repeated_line_number_points_at_the_repeat() -> None:
    body = _edited(
        "customer/valid/OrderConfirmation-two-lines.xml", b"<LineNumber>2</LineNumber>", b"<LineNumber>1</LineNumber>"
    )
    parsed = read(body)
    assert [(p.rule, p.path) for p in parsed.problems] == [
        ("lines.duplicate-number", "/OrderConfirmation/Lines/Line[1]/LineNumber"),
        ("lines.duplicate-number", "/OrderConfirmation/Lines/Line[2]/LineNumber"),
    ]


def test_a_delivery_home_without_a_patient_is_refused() -> None:
    body = (VALID / "customer/valid/CustomerOrder-patient-urgent.xml").read_bytes()
    start, end = body.index(b"  <Patient>"), body.index(b"</Patient>\n") + len(b"</Patient>\n")
    parsed = read(body[:start] + body[end:])
    assert [(p.rule, p.path) for p in parsed.problems] == [("order.patient", "/CustomerOrder/Patient")]
