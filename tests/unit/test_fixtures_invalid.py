"""Invalid fixtures: each breaks exactly one rule and names, in NAME.expected.toml, the problem it must produce.

tests/fixtures/<dialect>/invalid/NAME.xml is paired with NAME.expected.toml:

    rule = "personnummer.check-digit"            # the one rule broken
    path = "/CustomerOrder/Patient/PatientId"    # as read() reports it; "" when the problem has no path
    line = 21                                    # optional
    [settings]                                   # optional Settings overrides, e.g. max_message_bytes = 4096

All patient identifiers are synthetic (19121212-1212 and Skatteverket's test serial range 980-999).
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
import threading
import time
import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from typer.testing import CliRunner

from broker.cli import app
from broker.config import Settings
from broker.contract.dialect import DIALECTS, Parsed, ReadPolicy, read
from broker.model import messages as m
from broker.model.codes import AddressKind, ArticleType, Priority, Side

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
INVALID_DIRS = sorted(FIXTURES.glob("*/invalid"))
EXPECTED_SUFFIX = ".expected.toml"

# Reading one message, however hostile, must not take long; generous so a slow CI machine does not flake.
QUICK_SECONDS = 2.0

# Attacks on the parser. Besides the expected problem: read() returns quickly and no problem text
# repeats anything from /etc/passwd.
HOSTILE = (
    "customer/xxe-file-entity",
    "customer/xxe-network-entity",
    "customer/billion-laughs",
    "customer/quadratic-blowup",
    "customer/external-dtd",
    "customer/external-dtd-local-file",
    "customer/xinclude",
    "customer/deep-nesting-10000",
    "customer/deep-nesting-43",
    "customer/oversized",
)
PASSWD_MARKERS = ("root:", ":/bin/", ":/usr/sbin/nologin")
PATIENT_RULE_PREFIXES = ("personnummer.", "samordningsnummer.", "patient-id.")


# ---------------------------------------------------------------- fixtures and helpers


@dataclass(frozen=True)
class Fixture:
    xml: Path
    rule: str
    path: str
    line: int | None
    settings: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.xml.parent.parent.name}/{self.xml.name.removesuffix('.xml')}"

    @property
    def data(self) -> bytes:
        return self.xml.read_bytes()


def _expected_file(xml: Path) -> Path:
    return xml.with_name(xml.name.removesuffix(".xml") + EXPECTED_SUFFIX)


def _load(xml: Path) -> Fixture:
    expected = tomllib.loads(_expected_file(xml).read_text("utf-8"))
    unknown = set(expected) - {"rule", "path", "line", "settings"}
    assert not unknown, f"{xml.name}: unknown keys {unknown} in {EXPECTED_SUFFIX}"
    return Fixture(xml, expected["rule"], expected["path"], expected.get("line"), expected.get("settings", {}))


def _all_fixtures() -> list[Fixture]:
    return [
        _load(xml) for folder in INVALID_DIRS for xml in sorted(folder.glob("*.xml")) if _expected_file(xml).exists()
    ]


ALL = _all_fixtures()
BY_ID = {fx.id: fx for fx in ALL}


def _params(known: dict[str, str] | None = None, only: tuple[str, ...] | None = None) -> list[Any]:
    known = known or {}
    params = []
    for fx in ALL:
        if only is not None and fx.id not in only:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=known[fx.id])] if fx.id in known else []
        params.append(pytest.param(fx, id=fx.id, marks=marks))
    return params


def _settings(fx: Fixture) -> Settings:
    return dataclasses.replace(Settings(), **fx.settings)


def _read(fx: Fixture) -> Parsed:
    settings = _settings(fx)
    return read(fx.data, ReadPolicy(limits=settings.xml_limits, reserve_patterns=settings.reserve_patterns))


def _env(fx: Fixture | None = None) -> dict[str, str | None]:
    """The environment for the CLI: what read() depends on made explicit (the fixture's [settings] as HMC_*
    variables, defaults otherwise), so the caller's HMC_* variables and config file cannot interfere."""
    settings = _settings(fx) if fx is not None else Settings()
    names = {"max_message_bytes", "max_xml_depth", *(fx.settings if fx is not None else ())}
    env: dict[str, str | None] = {f"HMC_{name.upper()}": str(getattr(settings, name)) for name in sorted(names)}
    env["HMC_RESERVE_ID_PATTERNS"] = None  # None: unset
    env["HMC_CONFIG"] = None
    return env


def _problem_lines(output: str, source: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{source}:")]


_CLI_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<path>\S*): (?P<rule>[a-z0-9.-]+): (?P<message>.+)$")


def _offending_text(fx: Fixture) -> str:
    """The text of the element a fixture's expected path points at (the fixtures are well-formed)."""
    root = etree.fromstring(fx.data)
    steps = [re.sub(r"\[\d+\]$", "", step) for step in fx.path.strip("/").split("/")]
    assert etree.QName(root).localname == steps[0]
    el = root
    for step in steps[1:]:
        el = next(child for child in el if etree.QName(child).localname == step)
    return el.text or ""


# ---------------------------------------------------------------- the fixture set itself


def test_every_fixture_has_its_expectation_and_vice_versa() -> None:
    assert INVALID_DIRS, "no tests/fixtures/*/invalid directory"
    for folder in INVALID_DIRS:
        xmls = {p.name.removesuffix(".xml") for p in folder.glob("*.xml")}
        expectations = {p.name.removesuffix(EXPECTED_SUFFIX) for p in folder.glob("*" + EXPECTED_SUFFIX)}
        assert sorted(xmls - expectations) == [], f"{folder}: .xml without {EXPECTED_SUFFIX}"
        assert sorted(expectations - xmls) == [], f"{folder}: {EXPECTED_SUFFIX} without .xml"


def test_expectations_are_well_formed() -> None:
    for fx in ALL:
        assert re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", fx.rule), fx.id
        assert fx.path == "" or fx.path.startswith("/"), fx.id
        assert fx.line is None or (isinstance(fx.line, int) and fx.line >= 1), fx.id
        unknown = set(fx.settings) - {f.name for f in dataclasses.fields(Settings)}
        assert not unknown, f"{fx.id}: unknown settings {unknown}"


def test_lists_name_existing_fixtures() -> None:
    for fixture_id in HOSTILE:
        assert fixture_id in BY_ID, fixture_id
    for folder in INVALID_DIRS:
        assert list(folder.glob("*.xml")), f"{folder} is empty"


# ---------------------------------------------------------------- read()


@pytest.mark.parametrize("fx", _params())
def test_exactly_one_problem_with_the_expected_rule(fx: Fixture) -> None:
    parsed = _read(fx)
    assert parsed.message is None, "an invalid message was accepted"
    assert not parsed.ok
    assert [p.rule for p in parsed.problems] == [fx.rule], parsed.problems
    problem = parsed.problems[0]
    assert problem.message.strip(), "a problem without a message"
    if fx.line is not None:
        assert problem.line == fx.line, problem


@pytest.mark.parametrize("fx", _params())
def test_the_problem_names_the_expected_path(fx: Fixture) -> None:
    parsed = _read(fx)
    assert [p.path or "" for p in parsed.problems] == [fx.path], parsed.problems


@pytest.mark.parametrize(
    ("fixture_id", "shown"),
    [
        ("sesam2/ORDERS-priority-code", "{'N', 'B', 'A'}"),
        ("customer/CustomerOrder-priority-code", "{'normal', 'urgent', 'acute'}"),
        ("sesam2/ORDERS-date-dashed", r"\d{8}"),
    ],
)
def test_schema_messages_keep_what_the_sender_needs(fixture_id: str, shown: str) -> None:
    """A code-list refusal names the allowed codes; a pattern refusal shows the whole pattern."""
    (problem,) = _read(BY_ID[fixture_id]).problems
    assert shown in problem.message


@pytest.mark.parametrize("fx", [pytest.param(fx, id=fx.id) for fx in ALL if fx.rule.startswith(PATIENT_RULE_PREFIXES)])
def test_patient_identifiers_are_never_shown_unmasked(fx: Fixture) -> None:
    offending = _offending_text(fx).strip()
    digits = re.sub(r"[^0-9]", "", offending)
    assert len(digits) >= 10, "the fixture should hold a personnummer-like value"
    secrets = {offending, digits, digits[-10:], digits[:8]}  # as written, all digits, YYMMDDNNNC, birth date
    parsed = _read(fx)
    assert parsed.problems
    result = CliRunner(env=_env(fx)).invoke(app, ["validate", str(fx.xml)])
    for secret in secrets:
        for problem in parsed.problems:
            assert secret not in problem.message
            assert secret not in (problem.value or "")
        assert secret not in result.output


@pytest.mark.parametrize("fx", _params(only=HOSTILE))
def test_hostile_input_is_refused_quickly_and_leaks_nothing(fx: Fixture) -> None:
    started = time.perf_counter()
    parsed = _read(fx)
    elapsed = time.perf_counter() - started
    assert elapsed < QUICK_SECONDS, f"read() took {elapsed:.2f} s"
    assert parsed.message is None
    assert parsed.problems
    shown = " ".join(f"{p.message} {p.value or ''} {p.path or ''}" for p in parsed.problems)
    for marker in PASSWD_MARKERS:
        assert marker not in shown
    result = CliRunner(env=_env(fx)).invoke(app, ["validate", str(fx.xml)])
    assert result.exit_code == 1
    for marker in PASSWD_MARKERS:
        assert marker not in result.output


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a named pipe")
def test_an_external_dtd_subset_is_never_opened(tmp_path: Path) -> None:
    """A DOCTYPE naming a local named pipe: if the parser opens it, read() blocks until someone writes."""
    fifo = tmp_path / "subset.dtd"
    os.mkfifo(fifo)
    data = BY_ID["customer/external-dtd-local-file"].data.replace(b"file:///etc/passwd", fifo.as_uri().encode())
    outcome: list[Parsed] = []
    worker = threading.Thread(target=lambda: outcome.append(read(data)), daemon=True)
    worker.start()
    worker.join(QUICK_SECONDS)
    hung = worker.is_alive()
    if hung:  # release the parser: open the writing end and close it, so it reads end-of-file
        assert stat.S_ISFIFO(fifo.stat().st_mode)
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(QUICK_SECONDS)
    assert not hung, "read() opened the external DTD subset and blocked on it"
    assert [p.rule for p in outcome[0].problems] == ["xml.dtd-forbidden"]


# ---------------------------------------------------------------- the CLI


@pytest.mark.parametrize("fx", _params())
def test_cli_validate_reports_the_problem(fx: Fixture) -> None:
    result = CliRunner(env=_env(fx)).invoke(app, ["validate", str(fx.xml)])
    assert result.exit_code == 1, result.output
    lines = _problem_lines(result.stdout, str(fx.xml))
    assert len(lines) == 1, result.stdout
    match = _CLI_LINE.match(lines[0])
    assert match is not None, f"not FILE:LINE: PATH: rule: message: {lines[0]!r}"
    assert match["file"] == str(fx.xml)
    assert match["rule"] == fx.rule
    assert match["path"] == (fx.path or "-")
    if fx.line is not None:
        assert int(match["line"]) == fx.line
    assert match["message"].strip()
    assert "0 valid, 1 invalid" in result.stderr


def _valid_customer_order() -> bytes:
    header = m.Header(
        message_id="3f1c2a9e-7b4d-4e2a-9c1f-0a1b2c3d4e5f",
        message_type="CustomerOrder",
        sent_at=datetime(2026, 1, 15, 9, 30, tzinfo=UTC),
        sender_system="webSesam",
        customer_number="1234",
    )
    order = m.CustomerOrder(
        header=header,
        order_id="WS-2026-000123",
        priority=Priority.NORMAL,
        prescriber=m.Prescriber(hsa_id="SE2321000016-A12B", name="Anna Andersson"),
        delivery=m.Address(
            kind=AddressKind.UNIT, name="Vårdcentralen", street="Storgatan 1", postal_code="123 45", city="Stockholm"
        ),
        requested_delivery_date=date(2026, 2, 1),
        lines=[m.OrderLine(line_number=1, article_number="123456", quantity=2, article_type=ArticleType.ACCESSORY)],
    )
    return DIALECTS[Side.CUSTOMER].render(order)


def test_cli_mixed_run_reports_only_the_invalid_file(tmp_path: Path) -> None:
    valid = tmp_path / "CustomerOrder-valid.xml"
    valid.write_bytes(_valid_customer_order())
    assert read(valid.read_bytes()).ok
    invalid = BY_ID["customer/CustomerOrder-personnummer-check-digit"]
    result = CliRunner(env=_env(invalid)).invoke(app, ["validate", str(valid), str(invalid.xml)])
    assert result.exit_code == 1, result.output
    assert _problem_lines(result.stdout, str(valid)) == []
    assert str(valid) not in result.stdout
    lines = _problem_lines(result.stdout, str(invalid.xml))
    assert len(lines) == 1
    assert f": {invalid.path}: {invalid.rule}: " in lines[0]
    assert "1 valid, 1 invalid" in result.stderr


def test_cli_valid_file_alone_exits_0(tmp_path: Path) -> None:
    valid = tmp_path / "CustomerOrder-valid.xml"
    valid.write_bytes(_valid_customer_order())
    result = CliRunner(env=_env()).invoke(app, ["validate", str(valid)])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
