"""The XSDs and MAPPING.md are generated from the mapping table; they must match it, load in an
independent validator, and ship inside the wheel (tests/e2e/test_wheel.py)."""

from __future__ import annotations

import pytest
import xmlschema
from typer.testing import CliRunner

from broker.cli import app
from broker.contract.dialect import DIALECTS, SOURCE_SCHEMA_DIR
from broker.contract.generate import generated_files


@pytest.mark.parametrize("name", sorted(generated_files()))
def test_committed_schema_files_match_the_mapping_table(name: str) -> None:
    committed = (SOURCE_SCHEMA_DIR / name).read_bytes()
    assert committed == generated_files()[name], f"schemas/{name} is stale: run python -m broker.contract.generate"


@pytest.mark.parametrize("dialect", list(DIALECTS.values()), ids=lambda d: d.name.value)
def test_xsd_is_valid_for_an_independent_validator(dialect) -> None:  # type: ignore[no-untyped-def]
    schema = xmlschema.XMLSchema10(str(dialect.schema_path))
    roots = {el.local_name for el in schema.elements.values()}
    assert roots == set(dialect.binding.roots)


def test_schemas_command_lists_every_type_and_both_xsds() -> None:
    result = CliRunner().invoke(app, ["schemas"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for tmap_name in ("CustomerOrder", "ORDERS", "InvoiceData", "FAKTUNDERLAG", "Rejection"):
        assert tmap_name in result.output
    assert "customer.xsd" in result.output and "sesam2.xsd" in result.output
