"""A change may widen a published schema version, never narrow it: the compatibility check (what CI runs) and the
versioned bundle a customer system downloads."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from adapters.contract import bundle, compat
from broker.cli import app
from broker.contract.dialect import DIALECTS, SOURCE_SCHEMA_DIR
from broker.model.codes import Side

PUBLISHED = {
    p: json.loads((SOURCE_SCHEMA_DIR / p.file).read_text()) for p in compat.published_versions(SOURCE_SCHEMA_DIR)
}
CUSTOMER = next(f for p, f in PUBLISHED.items() if p.dialect == "customer" and p.version == "1.0")
PATHS = sorted(CUSTOMER)


def test_no_published_version_is_broken() -> None:
    assert compat.check(SOURCE_SCHEMA_DIR) == []
    assert {(p.dialect, p.version) for p in PUBLISHED} >= {("customer", "1.0"), ("sesam2", "1.0")}


def test_every_version_of_the_contract_is_published() -> None:
    published = {(p.dialect, p.version) for p in PUBLISHED}
    missing = [(d.name, v) for d in DIALECTS.values() for v in d.versions if (d.name, v) not in published]
    assert not missing, f"not yet published: {missing}: run hmc-broker contract --publish and commit schemas/published"


def _narrow(entry: dict[str, Any], how: str) -> dict[str, Any] | None:
    """A narrowed copy of one element's entry, or None when this kind of narrowing does not apply to it."""
    out = copy.deepcopy(entry)
    facets = out["type"]
    if how == "required" and out["min"] == 0:
        out["min"] = 1
    elif how == "fewer" and out["max"] > 1:
        out["max"] -= 1
    elif how == "shorter" and "maxLength" in facets and facets["maxLength"] > 1:
        facets["maxLength"] -= 1
    elif how == "enum" and facets.get("enumeration"):
        facets["enumeration"] = facets["enumeration"][1:]
    elif how == "type":
        facets["base"] = "xs:boolean"
    else:
        return None
    return out


@given(st.sampled_from(PATHS), st.sampled_from(["required", "fewer", "shorter", "enum", "type", "removed"]))
def test_any_narrowing_of_an_element_is_a_break_naming_it(path: str, how: str) -> None:
    current = copy.deepcopy(CUSTOMER)
    if how == "removed":
        for p in [p for p in current if p == path or p.startswith(path + "/")]:
            del current[p]
    else:
        narrowed = _narrow(current[path], how)
        if narrowed is None:
            return
        current[path] = narrowed
    found = compat.breaks(CUSTOMER, current)
    assert found and all(f.startswith(path) for f in found), found


@given(st.sampled_from(PATHS))
def test_widening_an_element_is_no_break(path: str) -> None:
    current = copy.deepcopy(CUSTOMER)
    entry = current[path]
    entry["min"] = 0
    entry["max"] += 1
    facets = entry["type"]
    if "maxLength" in facets:
        facets["maxLength"] += 10
    if "enumeration" in facets:
        facets["enumeration"] = [*facets["enumeration"], "something-new"]
    current[path + "/NewOptional"] = {"min": 0, "max": 1, "type": {"base": "xs:string"}}
    assert compat.breaks(CUSTOMER, current) == []


def test_a_new_required_element_is_a_break() -> None:
    current = {**CUSTOMER, "/CustomerOrder/Mandatory": {"min": 1, "max": 1, "type": {"base": "xs:string"}}}
    assert compat.breaks(CUSTOMER, current) == ["/CustomerOrder/Mandatory: a new required element"]


def test_a_narrowed_xsd_is_refused_by_the_check_and_the_command(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(SOURCE_SCHEMA_DIR, schemas)
    xsd = schemas / DIALECTS[Side.CUSTOMER].versions["1.0"]
    text = xsd.read_text()
    xsd.write_text(
        text.replace('name="OrderId" type="tns:ReferenceType"', 'name="OrderIdentity" type="tns:ReferenceType"', 1)
    )
    found = compat.check(schemas)
    assert "customer 1.0 /CustomerOrder/OrderId: removed" in found
    assert "customer 1.0 /CustomerOrder/OrderIdentity: a new required element" in found
    result = CliRunner().invoke(app, ["contract", "--check"])
    assert result.exit_code == 0, result.output  # the repository's own schemas are unchanged


def test_the_bundle_holds_every_version_and_a_manifest_of_checksums(tmp_path: Path) -> None:
    files = bundle.contents()
    for dialect in DIALECTS.values():
        assert set(dialect.versions.values()) <= set(files)
    assert {"asyncapi.yaml", "asyncapi.json", "events/v1/events.schema.json"} <= set(files)
    manifest = json.loads(files[bundle.MANIFEST])
    assert manifest["schemaVersions"] == {str(d.name): list(d.versions) for d in DIALECTS.values()}
    assert manifest["files"] == {
        n: hashlib.sha256(b).hexdigest() for n, b in sorted(files.items()) if n != bundle.MANIFEST
    }


def test_the_bundle_command_writes_a_reproducible_zip_and_a_directory(tmp_path: Path) -> None:
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    for target in (first, second, tmp_path / "dir"):
        result = CliRunner().invoke(app, ["contract", "--bundle", str(target)])
        assert result.exit_code == 0, result.output
    assert first.read_bytes() == second.read_bytes(), "same contract, same bytes"
    with zipfile.ZipFile(first) as z:
        names = z.namelist()
    assert all(n.startswith(bundle.bundle_name() + "/") for n in names)
    assert (tmp_path / "dir" / bundle.MANIFEST).is_file()
