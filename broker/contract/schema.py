"""XSD validation with lxml on the hot path; schemas are parsed once per process."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from lxml import etree

from broker.model.messages import Problem
from broker.privacy import mask_text

# libxml2's error types, named as rules a person can look up.
_RULES = {
    "SCHEMAV_CVC_ENUMERATION_VALID": "schema.code-list",
    "SCHEMAV_CVC_PATTERN_VALID": "schema.pattern",
    "SCHEMAV_CVC_MAXLENGTH_VALID": "schema.max-length",
    "SCHEMAV_CVC_MINLENGTH_VALID": "schema.min-length",
    "SCHEMAV_CVC_MININCLUSIVE_VALID": "schema.range",
    "SCHEMAV_CVC_MAXINCLUSIVE_VALID": "schema.range",
    "SCHEMAV_CVC_FRACTIONDIGITS_VALID": "schema.decimals",
    "SCHEMAV_CVC_TOTALDIGITS_VALID": "schema.decimals",
    "SCHEMAV_ELEMENT_CONTENT": "schema.structure",
    "SCHEMAV_CVC_COMPLEX_TYPE_2_4": "schema.structure",
    "SCHEMAV_CVC_ELT_1": "message.unknown-type",
    "SCHEMAV_CVC_DATATYPE_VALID_1_2_1": "schema.datatype",
}
_FOLLOW_UP = "SCHEMAV_CVC_DATATYPE_VALID_1_2_1"  # libxml2 repeats each facet error as a datatype error
_NS_IN_MESSAGE = re.compile(r"\{(?:urn|https?):[^}]*\}")  # element namespaces, not value sets


@functools.cache
def load(path: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


def validate(schema: etree.XMLSchema, root: etree._Element, repeated: frozenset[str] = frozenset()) -> list[Problem]:
    """Problems of a document against its XSD; elements named in `repeated` are always indexed ([1])."""
    if schema.validate(root):
        return []
    problems: list[Problem] = []
    facet_at: set[tuple[int, str]] = set()
    for entry in schema.error_log:
        path = _readable_path(root, entry.path or "", repeated)
        if entry.type_name == _FOLLOW_UP and (entry.line, path) in facet_at:
            continue
        facet_at.add((entry.line, path))
        message = mask_text(_NS_IN_MESSAGE.sub("", entry.message))
        problems.append(
            Problem(rule=_RULES.get(entry.type_name, "schema"), message=message, path=path, line=entry.line)
        )
    return problems


def _readable_path(root: etree._Element, path: str, repeated: frozenset[str]) -> str:
    """libxml2 names elements of a namespaced document /*/*[3]; an operator wants /CustomerOrder/Priority."""
    try:
        found = root.xpath(path) if path else []
    except etree.XPathError:
        return path
    if not found or not isinstance(found[0], etree._Element):
        return path
    steps = []
    for el in [found[0], *found[0].iterancestors()]:
        name = etree.QName(el).localname
        parent = el.getparent()
        same = (
            [s for s in parent if isinstance(s.tag, str) and etree.QName(s).localname == name]
            if parent is not None
            else [el]
        )
        steps.append(f"{name}[{same.index(el) + 1}]" if len(same) > 1 or name in repeated else name)
    return "/" + "/".join(reversed(steps))
