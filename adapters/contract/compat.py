"""Published schema versions stay valid: a change that would refuse a message a published XSD accepts is a break.

A published version is kept in the repository as its fingerprint, schemas/published/<dialect>-<version>.json:
every element path of the XSD with its occurrences and its simple type's facets. `breaks()` compares that
fingerprint with what the same version's XSD says now and names each break:
- an element removed (a sender's message no longer valid, a receiver's field gone), a version withdrawn;
- an element narrowed: fewer occurrences allowed (minOccurs up, maxOccurs down), a shorter maxLength, a longer
  minLength, an enumeration value gone, a tighter range or number of digits, another pattern or base type;
- a new required element (a sender's message that was valid no longer is).
Widening (a new optional element, a longer maxLength, a new enumeration value) is allowed. A new version is
published with `hmc-broker contract --publish` (never overwriting a published fingerprint); CI runs the check
(tests/unit/test_compatibility.py, `hmc-broker contract --check`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from broker.contract.dialect import DIALECTS, SOURCE_SCHEMA_DIR, schema_dir

XS = "{http://www.w3.org/2001/XMLSchema}"
PUBLISHED_DIR = "published"  # under the schema directory
UNBOUNDED = 10**9

Facets = dict[str, Any]
Fingerprint = dict[str, dict[str, Any]]  # element path -> {"min", "max", "type": facets}

# A facet narrows when the new value is on this side of the old: "up" = a larger value narrows.
_NARROWS_WHEN = {
    "minLength": "up",
    "maxLength": "down",
    "minInclusive": "up",
    "maxInclusive": "down",
    "totalDigits": "down",
    "fractionDigits": "down",
}


def fingerprint(xsd: bytes) -> Fingerprint:
    """Every element path of a generated XSD (global elements with inline complex types, named simple types)."""
    root = etree.fromstring(xsd)
    simple = {t.get("name"): _facets(t) for t in root.iterfind(f"{XS}simpleType")}
    found: Fingerprint = {}

    def walk(element: etree._Element, parent: str) -> None:
        path = f"{parent}/{element.get('name')}"
        declared = element.get("type")
        if declared is None:
            kind: Facets = {"base": "complex"}
        else:
            local = declared.split(":", 1)[-1]
            kind = simple.get(local, {"base": declared}) if not declared.startswith("xs:") else {"base": declared}
        top = element.getparent() is root
        found[path] = {
            "min": 1 if top else int(element.get("minOccurs", "1")),
            "max": 1 if top else _occurs(element.get("maxOccurs", "1")),
            "type": kind,
        }
        for child in element.iterfind(f"{XS}complexType/{XS}sequence/{XS}element"):
            walk(child, path)

    for element in root.iterfind(f"{XS}element"):
        walk(element, "")
    return found


def _occurs(text: str) -> int:
    return UNBOUNDED if text == "unbounded" else int(text)


def _facets(simple_type: etree._Element) -> Facets:
    restriction = simple_type.find(f"{XS}restriction")
    assert restriction is not None, f"simple type {simple_type.get('name')} without a restriction"
    facets: Facets = {"base": restriction.get("base")}
    for facet in restriction:
        if not isinstance(facet.tag, str) or facet.tag == f"{XS}annotation":
            continue
        name = etree.QName(facet).localname
        value = facet.get("value")
        if name in ("enumeration", "pattern"):
            facets.setdefault(name, []).append(value)
        else:
            facets[name] = _number(value)
    return facets


def _number(value: str | None) -> Any:
    try:
        return int(value or "")
    except ValueError:
        return value


def breaks(published: Fingerprint, current: Fingerprint) -> list[str]:
    """What in `current` refuses a message `published` accepts (or takes a field away); empty when compatible."""
    found: list[str] = []
    for path, was in published.items():
        now = current.get(path)
        if now is None:
            found.append(f"{path}: removed")
            continue
        if now["min"] > was["min"]:
            found.append(f"{path}: minOccurs {was['min']} -> {now['min']} (made required or more required)")
        if now["max"] < was["max"]:
            found.append(f"{path}: maxOccurs {was['max']} -> {now['max']}")
        found.extend(f"{path}: {problem}" for problem in _narrowed(was["type"], now["type"]))
    for path, now in current.items():
        parent = path.rsplit("/", 1)[0]
        if path not in published and now["min"] > 0 and parent in published:
            found.append(f"{path}: a new required element")
    return found


def _narrowed(was: Facets, now: Facets) -> list[str]:
    problems = []
    if was.get("base") != now.get("base"):
        problems.append(f"type {was.get('base')} -> {now.get('base')}")
        return problems
    if "enumeration" in now:
        gone = [v for v in was.get("enumeration", []) if v not in now["enumeration"]]
        if gone or "enumeration" not in was:
            problems.append(f"enumeration values no longer allowed: {gone or 'a list now restricts the values'}")
    if now.get("pattern") and now.get("pattern") != was.get("pattern"):
        problems.append(f"pattern {was.get('pattern')} -> {now['pattern']}")
    for facet, narrows in _NARROWS_WHEN.items():
        old, new = was.get(facet), now.get(facet)
        if new is None:
            continue
        if old is None or (new > old if narrows == "up" else new < old):
            problems.append(f"{facet} {old} -> {new}")
    return problems


@dataclass(frozen=True)
class Published:
    dialect: str
    version: str

    @property
    def file(self) -> str:
        return f"{PUBLISHED_DIR}/{self.dialect}-{self.version}.json"


def published_versions(directory: Path | None = None) -> list[Published]:
    folder = (directory or schema_dir()) / PUBLISHED_DIR
    found = []
    for path in sorted(folder.glob("*.json")):
        dialect, _, version = path.stem.partition("-")
        found.append(Published(dialect, version))
    return found


def check(directory: Path | None = None) -> list[str]:
    """Every break of every published version against the XSDs in `directory` (the schema directory)."""
    base = directory or schema_dir()
    problems: list[str] = []
    for p in published_versions(base):
        dialect = next((d for d in DIALECTS.values() if d.name == p.dialect), None)
        xsd_file = dialect.versions.get(p.version) if dialect else None
        if dialect is None or xsd_file is None:
            problems.append(f"{p.dialect} {p.version}: a published version is no longer in the contract")
            continue
        published = json.loads((base / p.file).read_text())
        current = fingerprint((base / xsd_file).read_bytes())
        problems.extend(f"{p.dialect} {p.version} {problem}" for problem in breaks(published, current))
    return problems


def _one_path_a_line(found: Fingerprint) -> str:
    """JSON with one element path a line: a reviewer sees what a version promised, a diff shows what changed."""
    lines = [f"{json.dumps(path)}: {json.dumps(entry, sort_keys=True)}" for path, entry in found.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


def publish(directory: Path = SOURCE_SCHEMA_DIR) -> list[Path]:
    """Write the fingerprint of every version not yet published; a published one is never rewritten."""
    done = {(p.dialect, p.version) for p in published_versions(directory)}
    written = []
    for dialect in DIALECTS.values():
        for version, xsd_file in dialect.versions.items():
            if (dialect.name, version) in done:
                continue
            target = directory / Published(dialect.name, version).file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_one_path_a_line(fingerprint((directory / xsd_file).read_bytes())))
            written.append(target)
    return written
