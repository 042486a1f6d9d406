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
