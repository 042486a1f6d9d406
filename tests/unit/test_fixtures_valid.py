"""The hand-written valid fixtures: each reads cleanly, renders back to itself and translates losslessly.

Fixtures live in tests/fixtures/<dialect>/valid/; a file's name starts with the canonical message type
(CustomerOrder-..., OrderConfirmation-...), also for SESAM2 files whose root is SESAM2's record name.
"""

from __future__ import annotations

import dataclasses
import difflib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from typer.testing import CliRunner

from broker.cli import app, format_problem
from broker.contract.dialect import DIALECTS, Parsed, ReadPolicy, XmlDialect, read
from broker.model.codes import Side
from broker.model.messages import MESSAGE_TYPES, Message
from broker.translation import forward

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OTHER = {Side.CUSTOMER: Side.SESAM2, Side.SESAM2: Side.CUSTOMER}
# The envelope fields that translation renews; everything else must survive it unchanged.
RENEWED = {"message_id": "", "causation_id": None, "forwarded_at": None}
TRANSLATED_AT = datetime(2026, 11, 20, 11, 30, 5, tzinfo=UTC)
# The CLI reads its policy from HMC_* variables; unset them so the defaults the fixtures are written for apply.
CLEAN_ENV: dict[str, str | None] = {
    "HMC_RESERVE_ID_PATTERNS": None,
    "HMC_MAX_MESSAGE_BYTES": None,
    "HMC_MAX_XML_DEPTH": None,
}


# ---------------------------------------------------------------- helpers


def valid_fixtures(dialect: Side) -> list[Path]:
    return sorted((FIXTURES / dialect.value / "valid").glob("*.xml"))


def type_prefix(path: Path) -> str:
    """The message type a fixture's name claims: everything before the first '-'."""
    return path.stem.split("-", 1)[0]


ALL_VALID = [(dialect, path) for dialect in Side for path in valid_fixtures(dialect)]
ALL_IDS = [f"{dialect.value}/{path.name}" for dialect, path in ALL_VALID]


def read_ok(data: bytes, source: str) -> Parsed:
    """Read with the default policy and fail with the CLI's error lines when anything was refused."""
    parsed = read(data, ReadPolicy())
    problems = "\n".join(format_problem(source, p) for p in parsed.problems)
    assert parsed.ok, f"{source} was refused:\n{problems}"
    assert parsed.message is not None
    return parsed


def canonical(data: bytes) -> bytes:
    """C14N of the document with whitespace-only text between elements dropped."""
    root = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
    c14n: bytes = etree.tostring(root, method="c14n")
    return c14n


def pretty(data: bytes) -> list[str]:
    root = etree.fromstring(data, etree.XMLParser(remove_blank_text=True))
    text: str = etree.tostring(root, pretty_print=True, encoding="unicode")
    return text.splitlines()


def business_content(message: Message) -> dict[str, Any]:
    """The message as plain data without the envelope fields translation renews; datetimes as UTC instants."""
    header = dataclasses.replace(message.header, **RENEWED)
    plain = _plain(dataclasses.replace(message, header=header))
    assert isinstance(plain, dict)
    return plain


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {"__type__": type(value).__name__}
        for f in dataclasses.fields(value):
            out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        assert value.tzinfo is not None and value.utcoffset() is not None, f"naive datetime {value!r}"
        return value.astimezone(UTC)
    return value


# ---------------------------------------------------------------- every fixture reads


@pytest.mark.parametrize(("dialect", "path"), ALL_VALID, ids=ALL_IDS)
def test_valid_fixture_reads_as_its_named_type(dialect: Side, path: Path) -> None:
    parsed = read_ok(path.read_bytes(), str(path))
    expected = type_prefix(path)
    assert expected in MESSAGE_TYPES, f"{path.name}: '{expected}' is not a message type"
    cls = MESSAGE_TYPES[expected]
    assert parsed.dialect is DIALECTS[dialect], f"{path.name} is in {dialect.value}/ but has another namespace"
    assert type(parsed.message) is cls
    binding = DIALECTS[dialect].binding
    assert cls in binding.by_type, f"{expected} is not a {dialect.value} message type"
    assert parsed.root_name == binding.by_type[cls].names[0]
    assert parsed.message is not None
    assert parsed.message.header.message_type == expected


@pytest.mark.parametrize("dialect", list(Side), ids=[d.value for d in Side])
def test_every_message_type_has_a_valid_fixture(dialect: Side) -> None:
    types = {cls.__name__ for cls in DIALECTS[dialect].binding.by_type}
    named = {type_prefix(path) for path in valid_fixtures(dialect)}
    assert types - named == set(), f"{dialect.value} types without a valid fixture"
    assert named - types == set(), f"{dialect.value} fixtures named after a type the dialect does not have"


# ---------------------------------------------------------------- parse -> render is identity


@pytest.mark.parametrize(("dialect", "path"), ALL_VALID, ids=ALL_IDS)
def test_render_of_read_is_the_fixture(dialect: Side, path: Path) -> None:
    data = path.read_bytes()
    parsed = read_ok(data, str(path))
    assert parsed.message is not None
    rendered = DIALECTS[dialect].render(parsed.message)
    if canonical(rendered) != canonical(data):
        diff = "\n".join(difflib.unified_diff(pretty(data), pretty(rendered), "fixture", "rendered", lineterm=""))
        pytest.fail(f"{path.name} does not render back to itself:\n{diff}")


# ---------------------------------------------------------------- translation keeps the business content


def _translatable() -> list[tuple[Side, Path]]:
    out = []
    for dialect, path in ALL_VALID:
        cls = MESSAGE_TYPES.get(type_prefix(path))
        if cls is not None and cls in DIALECTS[OTHER[dialect]].binding.by_type:
            out.append((dialect, path))
    return out


TRANSLATABLE = _translatable()


def test_translatable_fixtures_cover_both_directions() -> None:
    assert {dialect for dialect, _ in TRANSLATABLE} == set(Side)


@pytest.mark.parametrize(("dialect", "path"), TRANSLATABLE, ids=[f"{d.value}/{p.name}" for d, p in TRANSLATABLE])
def test_translation_keeps_business_content(dialect: Side, path: Path) -> None:
    source = read_ok(path.read_bytes(), str(path)).message
    assert source is not None
    target: XmlDialect = DIALECTS[OTHER[dialect]]
    forwarded = forward(source, now=TRANSLATED_AT)
    translated = target.render(forwarded)
    back = read_ok(translated, f"{path.name} translated to {target.name.value}")
    assert back.dialect is target
    assert back.message is not None
    assert type(back.message) is type(source)
    assert business_content(back.message) == business_content(source)
    # The renewed envelope survives the other dialect too, and the origin is kept: the sender's SentAt and
    # SenderSystem; the broker's time goes to SESAM2 in a field of its own (FORMEDLAD).
    header = back.message.header
    assert header.message_id == forwarded.header.message_id != source.header.message_id
    assert (header.sent_at, header.sender_system) == (source.header.sent_at, source.header.sender_system)
    assert header.forwarded_at == (TRANSLATED_AT if target.name is Side.SESAM2 else None)
    assert header.causation_id == source.header.message_id
    if target.name is Side.SESAM2:
        assert b"<FORMEDLAD>" in translated


# ---------------------------------------------------------------- the CLI


def test_cli_validate_accepts_every_valid_fixture() -> None:
    files = [str(path) for _, path in ALL_VALID]
    assert files
    result = CliRunner().invoke(app, ["validate", *files], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    assert f"{len(files)} valid, 0 invalid" in result.stderr


def test_cli_translate_prints_valid_sesam2() -> None:
    path = FIXTURES / "customer" / "valid" / "CustomerOrder-patient-urgent.xml"
    result = CliRunner().invoke(app, ["translate", str(path)], env=CLEAN_ENV)
    assert result.exit_code == 0, result.output
    out = result.stdout_bytes
    assert out.startswith(b"<?xml")
    parsed = read_ok(out, "translate output")
    assert parsed.dialect is DIALECTS[Side.SESAM2]
    assert parsed.root_name == "ORDERS"
    source = read_ok(path.read_bytes(), str(path)).message
    assert parsed.message is not None and source is not None
    assert business_content(parsed.message) == business_content(source)
