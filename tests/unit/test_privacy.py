"""Masking of patient identifiers. Synthetic identifiers only (serials 980-999, 19121212-1212)."""

from __future__ import annotations

import dataclasses
import re
from datetime import date
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.contract.dialect import DIALECTS, read
from broker.model.codes import Side
from broker.model.messages import MESSAGE_TYPES, Patient
from broker.privacy import flagged_protected, mask_identifier, mask_text, protected_texts, withhold_protected
from tests.support.profiles import at_most
from tests.support.strategies import messages

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "customer" / "valid"

TOKEN = re.compile(r"\[patient-id:[0-9a-f]{8}\]")
SAME_PERSON = ["191212121212", "19121212-1212", "121212-1212", "1212121212", "121212+1212", " 1212121212 "]


def luhn_digit(payload: str) -> str:
    total = 0
    for position, char in enumerate(reversed(payload)):
        value = int(char) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def test_token_shape() -> None:
    assert TOKEN.fullmatch(mask_identifier("191212121212"))


def test_same_person_same_token_in_every_form() -> None:
    assert len({mask_identifier(form) for form in SAME_PERSON}) == 1
    assert mask_identifier("19800101ab123") == mask_identifier("19800101AB123")


def test_different_identifiers_differ() -> None:
    tokens = {mask_identifier(value) for value in ("191212121212", "191212121220", "19800101AB123")}
    assert len(tokens) == 3
    # A "99" reservnummer keeps its prefix, so it does not share the token of the personnummer it ends in.
    assert mask_identifier("991212121212") != mask_identifier("1212121212")


@pytest.mark.parametrize(
    "identifier",
    [*SAME_PERSON, "197010632391", "701063-2391", "990000000001", "19800101AB123", "19800101ab12"],
)
def test_mask_text_removes_every_form(identifier: str) -> None:
    text = f"order for patient {identifier.strip()}, see ({identifier.strip()})."
    masked = mask_text(text)
    assert not re.search(r"[0-9]{4}", masked.replace(TOKEN.findall(masked)[0], ""))
    assert masked == f"order for patient {mask_identifier(identifier)}, see ({mask_identifier(identifier)})."


def test_mask_text_same_token_for_every_form() -> None:
    masked = mask_text(" / ".join(SAME_PERSON))
    assert len(set(TOKEN.findall(masked))) == 1
    assert len(TOKEN.findall(masked)) == len(SAME_PERSON)


@pytest.mark.parametrize(
    "text",
    [
        "message 550e8400-e29b-41d4-a716-446655440000 received",
        "message 12345678-1234-1234-1234-123456789012 received",  # all-digit groups
        "MESSAGE 12345678-ABCD-1234-ABCD-121212121212",
        "gln 7350053850019 ok",
        "at 20261122101500 done",
        "sequence 1234567890123456789",
        "+46701234567",  # 11 digits
        "order 123456789",  # 9 digits
        "unit SE2321000016-7HK2, prescriber SE2321000016-P4Q8",  # HSA-ids: their 10 digits are no date
        "SESAM2 order 4000012345",  # no month 00
        "organisation 2321000016",  # an organisation number: month 21
        "no identifiers here",
    ],
)
def test_mask_text_leaves_other_values(text: str) -> None:
    assert mask_text(text) == text


def test_only_runs_that_pass_the_patient_rules_are_masked() -> None:
    """A real date and check digit (or a reservnummer) make a patient identifier; the shape alone does not."""
    assert mask_text("patient 121212-1212") == f"patient {mask_identifier('121212-1212')}"
    assert mask_text("samordningsnummer 701063-2391") == f"samordningsnummer {mask_identifier('701063-2391')}"
    assert mask_text("reserv 990000000001") == f"reserv {mask_identifier('990000000001')}"
    assert mask_text("not a date 991399-1234, wrong check digit 121212-1213") == (
        "not a date 991399-1234, wrong check digit 121212-1213"
    )


def test_mask_text_next_to_a_uuid() -> None:
    uuid = "550e8400-e29b-41d4-a716-446655440000"
    assert mask_text(f"{uuid} 191212121212") == f"{uuid} {mask_identifier('191212121212')}"


@st.composite
def personnummer_forms(draw: st.DrawFn) -> tuple[str, str]:
    """(a synthetic personnummer or samordningsnummer in one of its forms, its 10-digit body)."""
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)))
    day = born.day + draw(st.sampled_from([0, 60]))
    payload = f"{born:%y%m}{day:02d}{draw(st.integers(980, 999)):03d}"
    body = payload + luhn_digit(payload)
    century = f"{born.year // 100:02d}"
    form = draw(
        st.sampled_from(
            [
                century + body,
                f"{century}{body[:6]}-{body[6:]}",
                body,
                f"{body[:6]}-{body[6:]}",
                f"{body[:6]}+{body[6:]}",
            ]
        )
    )
    return form, body


@given(personnummer_forms(), st.text(), st.text())
def test_masked_text_never_contains_the_body(drawn: tuple[str, str], before: str, after: str) -> None:
    form, body = drawn
    masked = mask_text(f"{before} {form} {after}")
    # The random text might hold the digits itself; only what mask_text left of the identifier counts.
    assert masked.count(body) <= (before + after).count(body)
    assert mask_identifier(form) in masked


no_digits = st.text(alphabet=st.characters(exclude_characters="0123456789-"))


@given(personnummer_forms(), no_digits, no_digits)
def test_masked_text_without_separating_spaces(drawn: tuple[str, str], before: str, after: str) -> None:
    form, body = drawn
    assert body not in mask_text(before + form + after)


FRAGMENTS = [
    *SAME_PERSON,
    "197010632391",
    "19800101ab123",
    "990000000001",
    "550e8400-e29b-41d4-a716-446655440000",
    "7350053850019",
    "20261122101500",
    "1",
    "12",
    "-",
    "+",
    " ",
    "x",
    "AB",
    "abcd",
]


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3)).map("".join))
def test_mask_text_is_idempotent(text: str) -> None:
    once = mask_text(text)
    assert mask_text(once) == once


@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=3)).map("".join))
def test_scanning_runs_finds_what_scanning_the_whole_text_finds(text: str) -> None:
    from broker.privacy import _IN_RUN, _mask_match

    assert mask_text(text) == _IN_RUN.sub(_mask_match, text)


# --- protected identity (skyddade personuppgifter) ---------------------------------------------------

WITH_PATIENT = sorted(
    (t for t in MESSAGE_TYPES.values() if "patient" in {f.name for f in dataclasses.fields(t)}),
    key=lambda t: t.__name__,
)


@pytest.mark.parametrize("side", list(Side))
@pytest.mark.parametrize("cls", WITH_PATIENT, ids=lambda t: t.__name__)
@settings(max_examples=at_most(5), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_protected_patient_is_withheld_from_any_rendering(cls: type, side: Side, data: st.DataObject) -> None:
    message = data.draw(messages(cls))
    patient = message.patient or Patient(patient_id="191212121212", name="Tolvan Tolvansson")  # type: ignore[attr-defined]
    message = dataclasses.replace(message, patient=dataclasses.replace(patient, protected=True))
    if cls not in DIALECTS[side].binding.by_type:
        return
    shown = withhold_protected(DIALECTS[side].render(message).decode(), message)
    secrets = [t for t in protected_texts(message) if t.strip()]
    assert patient.name in secrets
    # Element text as a whole: a short secret (a city "A") may also be a substring of other content.
    assert not [t for t in secrets if f">{escape(t)}<" in shown]
    assert flagged_protected(DIALECTS[side].render(message))


def test_an_unprotected_patient_is_not_withheld() -> None:
    order = read((FIXTURES / "CustomerOrder-patient-urgent.xml").read_bytes()).message
    assert protected_texts(order) == []
    assert withhold_protected("Elsa Karlsson", order) == "Elsa Karlsson"
