"""The wheel, built with pip and installed apart, carries the schemas and validates with them (pip and a
fresh interpreter are processes of their own, hence here and not in tests/unit/test_schemas.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_installed_wheel_carries_the_schemas_and_validates_with_them(tmp_path: Path) -> None:
    _build_wheel(ROOT, tmp_path)
    wheel = next(tmp_path.glob("hmc_broker-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        shipped = set(z.namelist())
        assert "broker/_schemas/customer/v1/customer.xsd" in shipped
        # the AsyncAPI document and the events' JSON Schema ship beside the XSDs (hmc-broker contract, the bundle)
        assert {"broker/_schemas/asyncapi.yaml", "broker/_schemas/events/v1/events.schema.json"} <= shipped
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


def test_the_client_wheel_carries_the_contract_and_imports_nothing_of_the_broker(tmp_path: Path) -> None:
    _build_wheel(ROOT / "clients/python", tmp_path)
    wheel = next(tmp_path.glob("hmc_broker_client-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        shipped = set(z.namelist())
        z.extractall(site)
    assert {"hmc_client/_contract/asyncapi.json", "hmc_client/_contract/customer/v1/customer.xsd"} <= shipped
    assert not any(n.startswith(("broker/", "adapters/", "replay/")) for n in shipped)
    probe = (
        "import sys, hmc_client\n"
        "assert hmc_client.__file__.startswith(sys.argv[1]), hmc_client.__file__\n"
        "c = hmc_client.Contract.load()\n"
        "assert str(c.directory).startswith(sys.argv[1]), c.directory\n"
        "from pathlib import Path\n"
        "c.read(Path(sys.argv[2]).read_bytes())\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('broker', 'adapters', 'replay')]\n"
        "assert not loaded, loaded\n"
    )
    order = ROOT / "tests/fixtures/customer/valid/CustomerOrder-unit-minimal.xml"
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run(
        [sys.executable, "-c", probe, str(site), str(order)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


def _build_wheel(project: Path, out: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(project)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
