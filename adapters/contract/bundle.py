"""The contract as a product: one versioned bundle a customer system downloads (a directory or a zip file).

It holds the XSD of every schema version of both dialects, the events' JSON Schema, the AsyncAPI document
(YAML and JSON), the mapping and the dialects' description, the published versions' fingerprints, and
manifest.json (the contract's version, the schema versions, and the SHA-256 of every file). Everything comes
from the schema directory the broker itself validates with (schemas/ in a checkout, broker/_schemas in the
wheel), so the bundle is what the broker runs. The zip is byte-for-byte reproducible: same contract, same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from importlib.metadata import version as installed_version
from pathlib import Path

from adapters.contract import compat, events
from adapters.contract.generate import ASYNCAPI_JSON, ASYNCAPI_YAML
from broker.contract.dialect import DIALECTS, schema_dir

MANIFEST = "manifest.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a fixed time stamp: reproducible zips


def bundle_name() -> str:
    return f"hmc-contract-{installed_version('hmc-broker')}"


def contents(source: Path | None = None) -> dict[str, bytes]:
    """Every file of the bundle by its path inside it, the manifest last."""
    base = source or schema_dir()
    names = [
        ASYNCAPI_YAML,
        ASYNCAPI_JSON,
        events.EVENTS_SCHEMA_FILE,
        *(f for d in DIALECTS.values() for f in d.versions.values()),
        *(p.file for p in compat.published_versions(base)),
        "README.md",
        "MAPPING.md",
    ]
    files = {name: (base / name).read_bytes() for name in dict.fromkeys(names)}
    manifest = {
        "name": "hmc-broker contract",
        "version": installed_version("hmc-broker"),
        "schemaVersions": {str(d.name): list(d.versions) for d in DIALECTS.values()},
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2) + "\n").encode()
    return files


def zipped() -> bytes:
    """The bundle as a zip file's bytes (one top folder inside): what `--bundle X.zip` writes and the console serves."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in sorted(contents().items()):
            info = zipfile.ZipInfo(f"{bundle_name()}/{name}", date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buffer.getvalue()


def write(target: Path) -> Path:
    """The bundle at `target`: a zip file when it ends in .zip (one top folder inside), else a directory."""
    if target.suffix == ".zip":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(zipped())
        return target
    files = contents()
    for name, data in files.items():
        path = target / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return target
