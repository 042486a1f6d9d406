"""`hmc-broker validate` and `schemas`: standard input, and --json whose stdout parses as JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from broker.cli import app

FIXTURES = Path(__file__).parents[1] / "fixtures"
GOOD = FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml"
BAD = FIXTURES / "customer/invalid/ArticleRegisterUpdate-gln-check-digit.xml"


def test_a_dash_reads_the_message_from_standard_input() -> None:
    assert CliRunner().invoke(app, ["validate", "-"], input=GOOD.read_bytes()).exit_code == 0
    refused = CliRunner().invoke(app, ["validate", "-"], input=BAD.read_bytes())
    assert refused.exit_code == 1 and "gln.check-digit" in refused.stdout


def test_json_lists_each_file_with_its_problems() -> None:
    result = CliRunner().invoke(app, ["validate", "--json", str(GOOD), str(BAD)])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert (report["valid"], report["invalid"]) == (1, 1)
    good, bad = report["files"]
    assert good == {"file": str(GOOD), "valid": True, "problems": []}
    assert bad["valid"] is False and [p["rule"] for p in bad["problems"]] == ["gln.check-digit"]
    assert bad["problems"][0]["path"] == "/ArticleRegisterUpdate/Articles/Article[1]/SupplierGln"


def test_schemas_json_lists_every_type_and_both_xsds() -> None:
    from broker.contract.mapping import TYPE_MAPS

    report = json.loads(CliRunner().invoke(app, ["schemas", "--json"]).stdout)
    assert [t["type"] for t in report["types"]] == [t.cls.__name__ for t in TYPE_MAPS.values()]
    assert {d["dialect"] for d in report["dialects"]} == {"customer", "sesam2"}
    assert all(Path(d["xsd"]).is_file() for d in report["dialects"])
