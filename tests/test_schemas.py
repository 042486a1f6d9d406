"""The XSDs and MAPPING.md are generated from the mapping table; they must match it, load in an
independent validator, and ship inside the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import xmlschema
from typer.testing import CliRunner

from broker.cli import app
from broker.contract.dialect import DIALECTS, SOURCE_SCHEMA_DIR
from broker.contract.generate import generated_files

ROOT = Path(__file__).resolve().parents[1]


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


def test_installed_wheel_carries_the_schemas_and_validates_with_them(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("hmc_broker-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        assert "broker/_schemas/customer/v1/customer.xsd" in z.namelist()
        z.extractall(site)
    fixture = ROOT / "tests/fixtures/customer/valid"
    probe = (
        "import sys, broker, broker.contract.dialect as d\n"
        "assert broker.__file__.startswith(sys.argv[1]), broker.__file__\n"
        "assert str(d.schema_dir()).startswith(sys.argv[1]), d.schema_dir()\n"
        "from pathlib import Path\n"
        "files = sorted(Path(sys.argv[2]).glob('*.xml'))\n"
        "assert files\n"
        "bad = [f.name for f in files if not d.read(f.read_bytes()).ok]\n"
        "assert not bad, bad\n"
        "print(len(files))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-c", probe, str(site), str(fixture)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert int(run.stdout) >= 1
