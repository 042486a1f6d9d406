"""--json on the commands that need no service: stdout parses as JSON and holds the result alone."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from adapters.harness import scenarios
from broker.cli import app

ORDER = Path(__file__).resolve().parents[1] / "fixtures/customer/valid/CustomerOrder-patient-urgent.xml"


def test_scenarios_json_lists_every_shipped_scenario() -> None:
    result = CliRunner().invoke(app, ["scenarios", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [s["name"] for s in listed] == list(scenarios.shipped())
    assert all(s["steps"] and s["description"] for s in listed)


def test_translate_json_names_the_type_and_both_dialects() -> None:
    result = CliRunner().invoke(app, ["translate", str(ORDER), "--json"])
    assert result.exit_code == 0, result.output
    translated = json.loads(result.stdout)
    assert (translated["type"], translated["from"], translated["to"]) == ("CustomerOrder", "customer", "sesam2")
    assert translated["xml"].startswith("<?xml") and "<ORDERS " in translated["xml"]
