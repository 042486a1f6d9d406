"""The one place where untrusted XML is parsed.

No entity expansion, no DTD (a DOCTYPE is refused outright), no network, no XInclude, UTF-8 only,
bounded size and depth. Everything refused here becomes a Problem naming the rule.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lxml import etree

from broker.model.messages import Problem

XINCLUDE_NS = "http://www.w3.org/2001/XInclude"
_local = threading.local()  # lxml parsers are not thread-safe; one per thread


@dataclass(frozen=True)
class XmlLimits:
    max_bytes: int = 5 * 1024 * 1024
    max_depth: int = 32


class XmlRefused(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,  # keeps libxml2's own depth and text-size limits
            remove_blank_text=False,
            collect_ids=False,
        )
        _local.parser = parser
    return parser


_DEPTH_CHECKS: dict[int, etree.XPath] = {}


def _too_deep(root: etree._Element, max_depth: int) -> bool:
    check = _DEPTH_CHECKS.get(max_depth)
    if check is None:
        check = _DEPTH_CHECKS[max_depth] = etree.XPath("boolean(/" + "/".join(["*"] * (max_depth + 1)) + ")")
    return bool(check(root))


def parse(data: bytes, limits: XmlLimits | None = None) -> etree._Element:
    """Parse untrusted bytes into a tree, or raise XmlRefused with the rule that was broken."""
    limits = limits or XmlLimits()
    if len(data) > limits.max_bytes:
        raise XmlRefused(
            Problem(rule="xml.too-large", message=f"message is {len(data)} bytes; the limit is {limits.max_bytes}")
        )
    if not data.strip():
        raise XmlRefused(Problem(rule="xml.empty", message="message body is empty"))
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as e:
        text = str(e.msg or e)
        rule = "xml.too-deep" if "depth" in text.lower() else "xml.malformed"
        if "encoding" in text.lower() or "utf-8" in text.lower() or "char" in text.lower():
            rule = "xml.encoding" if rule == "xml.malformed" else rule
        raise XmlRefused(Problem(rule=rule, message=text, line=e.lineno or None)) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRefused(
            Problem(
                rule="xml.dtd-forbidden",
                message="a DOCTYPE (DTD, entity declarations) is not allowed",
                line=1,
            )
        )
    encoding = (tree.docinfo.encoding or "UTF-8").upper()
    if encoding not in ("UTF-8", "UTF8"):
        raise XmlRefused(Problem(rule="xml.encoding", message=f"encoding must be UTF-8, not {encoding}", line=1))
    if _too_deep(root, limits.max_depth):
        raise XmlRefused(Problem(rule="xml.too-deep", message=f"document is nested deeper than {limits.max_depth}"))
    for el in root.iter(f"{{{XINCLUDE_NS}}}*"):
        raise XmlRefused(Problem(rule="xml.xinclude-forbidden", message="XInclude is not allowed", line=el.sourceline))
    return root
