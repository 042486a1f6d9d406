"""Text fields: NFC before the schema counts characters and before forwarding; a required text holds a
non-space character. Unicode's normal forms: UAX #15; XML's white space: XML 1.0 production [3] (S)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from broker.contract.dialect import DIALECTS, read
from broker.contract.normal_form import needs_normalising
from broker.model import messages as m
from broker.model.codes import Side

VALID = Path(__file__).resolve().parents[1] / "fixtures" / "customer" / "valid" / "CustomerOrder-unit-minimal.xml"
NAME = "<Name>Habiliteringscenter Västerby</Name>"
SWEDISH = "abcdefghijklmnopqrstuvwxyzåäöéüÅÄÖÉ"


def with_unit_name(name: str) -> bytes:
    document = VALID.read_text(encoding="utf-8")
    assert NAME in document
    escaped = name.replace("&", "&amp;").replace("<", "&lt;")
    return document.replace(NAME, f"<Name>{escaped}</Name>").encode("utf-8")


@given(st.text(SWEDISH, min_size=1, max_size=100))
def test_decomposed_names_are_read_and_forwarded_in_nfc(name: str) -> None:
    decomposed = unicodedata.normalize("NFD", name)
    parsed = read(with_unit_name(decomposed))
    assert parsed.ok, parsed.problems  # 100 letters, however many code points in NFD
    assert isinstance(parsed.message, m.CustomerOrder)
    assert parsed.message.delivery.name == unicodedata.normalize("NFC", name)
    forwarded = DIALECTS[Side.SESAM2].render(parsed.message).decode("utf-8")
    assert unicodedata.is_normalized("NFC", forwarded)
    assert unicodedata.normalize("NFC", name) in forwarded


def test_hundred_decomposed_letters_are_a_hundred_characters() -> None:
    assert read(with_unit_name(unicodedata.normalize("NFD", "å" * 100))).ok
    over = read(with_unit_name(unicodedata.normalize("NFD", "å" * 101)))
    assert [(p.rule, p.path) for p in over.problems] == [("schema.max-length", "/CustomerOrder/DeliveryAddress/Name")]
    assert "length of '101'" in over.problems[0].message


@given(st.text(SWEDISH, min_size=1, max_size=100))
def test_text_written_as_character_references_is_normalised(name: str) -> None:
    # All bytes ASCII, the text not: every non-ASCII character as a reference (&#778; is COMBINING RING ABOVE).
    document = with_unit_name(unicodedata.normalize("NFD", name)).decode("utf-8").encode("ascii", "xmlcharrefreplace")
    parsed = read(document)
    assert parsed.ok, parsed.problems
    assert isinstance(parsed.message, m.CustomerOrder)
    assert parsed.message.delivery.name == unicodedata.normalize("NFC", name)


def test_a_combining_mark_after_markup_does_not_break_the_document() -> None:
    # NFC folds '>' + U+0338 into one character; normalising text, never raw bytes, keeps the markup.
    parsed = read(with_unit_name("\u0338Vårdcentralen"))
    assert parsed.ok, parsed.problems


@given(st.text(" \t\r\n", min_size=1, max_size=20))
def test_required_text_of_white_space_only_is_refused(blank: str) -> None:
    parsed = read(with_unit_name(blank))
    assert not parsed.ok
    assert [(p.rule, p.path) for p in parsed.problems] == [("value.blank", "/CustomerOrder/DeliveryAddress/Name")]


def test_latin1_text_is_nfc_in_any_order_so_the_reader_skips_the_check_for_it() -> None:
    """normal_form.needs_normalising takes a document of Latin-1 characters as NFC without checking: true only if
    no Latin-1 character decomposes, none is a combining mark, and no two of them compose."""
    latin1 = [chr(i) for i in range(256)]
    assert all(unicodedata.combining(ch) == 0 and unicodedata.is_normalized("NFC", ch) for ch in latin1)
    assert all(unicodedata.is_normalized("NFC", a + b) for a in latin1 for b in latin1)


@given(st.text(alphabet=st.characters(max_codepoint=0x36F, exclude_categories=("Cs",)), min_size=1, max_size=40))
def test_a_document_needs_normalising_exactly_when_its_text_is_not_nfc(text: str) -> None:
    """Latin-1 (the fast path), Latin Extended and combining marks (U+0300-): never a document left un-normalised."""
    document = f"<a>{text}</a>".encode()
    if not unicodedata.is_normalized("NFC", text):
        assert needs_normalising(document)
