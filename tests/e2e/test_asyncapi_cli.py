"""The committed AsyncAPI document passes the AsyncAPI project's own parser (`asyncapi validate`, @asyncapi/cli),
offline; a document the parser must refuse is refused, so the check can fail."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path

import pytest

from adapters.contract import asyncapi
from adapters.contract.generate import ASYNCAPI_JSON, ASYNCAPI_YAML
from broker.contract.dialect import SOURCE_SCHEMA_DIR
from tests.support.tools import NETWORK_REFUSED, offline_env, require_asyncapi


def validate(document: Path, home: Path) -> subprocess.CompletedProcess[str]:
    cli = require_asyncapi()
    return subprocess.run(
        [str(cli), "validate", str(document), "--fail-severity", "warn"],
        env=offline_env(home),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", [ASYNCAPI_YAML, ASYNCAPI_JSON])
def test_the_committed_document_is_valid_asyncapi(name: str, tmp_path: Path) -> None:
    run = validate(SOURCE_SCHEMA_DIR / name, tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "is valid" in output, output
    assert NETWORK_REFUSED not in output, f"the CLI tried to reach the network:\n{output}"


def test_a_broken_document_is_refused(tmp_path: Path) -> None:
    broken = copy.deepcopy(asyncapi.document())
    operation = next(iter(broken["operations"].values()))
    operation["action"] = "publish"  # AsyncAPI 2's word: 3.0 knows only send and receive
    document = tmp_path / "broken.json"
    document.write_text(json.dumps(broken))
    run = validate(document, tmp_path)
    assert run.returncode != 0, run.stdout + run.stderr
    assert "action" in run.stdout + run.stderr
