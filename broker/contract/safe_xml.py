"""The one place where untrusted XML is parsed.

No entity expansion, no DTD (a DOCTYPE is refused outright), no network, no XInclude, UTF-8 only,
bounded size and depth. Everything refused here becomes a Problem naming the rule.
"""

from __future__ import annotations

import re
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


def parser() -> etree.XMLParser:
    """This thread's hardened parser (the bench times lxml with it as the floor of the pure stages)."""
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,  # keeps libxml2's own depth and text-size limits
            remove_blank_text=False,
            # Not collect_ids=False: lxml then sets a loadsubset flag that makes libxml2 load an external DTD.
        )
        _local.parser = parser
    return parser


_DEPTH_CHECKS: dict[int, etree.XPath] = {}


def _too_deep(root: etree._Element, max_depth: int) -> bool:
    check = _DEPTH_CHECKS.get(max_depth)
    if check is None:
        check = _DEPTH_CHECKS[max_depth] = etree.XPath("boolean(/" + "/".join(["*"] * (max_depth + 1)) + ")")
    return bool(check(root))


_ENCODING_ERRORS = {
    etree.ErrorTypes.ERR_INVALID_ENCODING,
    etree.ErrorTypes.ERR_UNKNOWN_ENCODING,
    etree.ErrorTypes.ERR_UNSUPPORTED_ENCODING,
    etree.ErrorTypes.ERR_ENCODING_NAME,
    etree.ErrorTypes.ERR_MISSING_ENCODING,
    etree.ErrorTypes.WAR_ENCODING_MISMATCH,
}
_DECLARED_ENCODING = re.compile(rb"""\A(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")
_WIDE_BOMS = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def _refuse(rule: str, message: str, line: int | None = None) -> XmlRefused:
    return XmlRefused(Problem(rule=rule, message=message, line=line))


def _screen(data: bytes, limits: XmlLimits) -> None:
    """Refusals decided on the raw bytes, before libxml2 sees anything (a DTD is never processed)."""
    if len(data) > limits.max_bytes:
        raise _refuse("xml.too-large", f"message is {len(data)} bytes; the limit is {limits.max_bytes}")
    if not data.strip():
        raise _refuse("xml.empty", "message body is empty")
    if data.startswith(_WIDE_BOMS) or b"\x00" in data[:4]:
        raise _refuse("xml.encoding", "message must be UTF-8; this looks like UTF-16 or UTF-32", 1)
    declared = _DECLARED_ENCODING.match(data[:300])
    if declared and declared.group(1).decode("ascii", "replace").upper() not in ("UTF-8", "UTF8"):
        name = declared.group(1).decode("ascii", "replace")[:40]
        raise _refuse("xml.encoding", f"message must be UTF-8; its declaration says {name}", 1)
    doctype = data.find(b"<!DOCTYPE")
    if doctype >= 0:
        line = data.count(b"\n", 0, doctype) + 1
        raise _refuse("xml.dtd-forbidden", "a DOCTYPE (DTD, entity declarations) is not allowed", line)


def parse(data: bytes, limits: XmlLimits | None = None) -> etree._Element:
    """Parse untrusted bytes into a tree, or raise XmlRefused with the rule that was broken."""
    limits = limits or XmlLimits()
    _screen(data, limits)
    try:
        root = etree.fromstring(data, parser())
    except etree.XMLSyntaxError as e:
        text = str(e.msg or e)
        if e.code in _ENCODING_ERRORS:
            rule, text = "xml.encoding", f"message must be UTF-8: {text}"
        elif "depth" in text.lower():
            # libxml2 says "use XML_PARSE_HUGE option": advice for the parser's user, not for the sender.
            rule, text = "xml.too-deep", f"document is nested deeper than {limits.max_depth} levels"
        else:
            rule = "xml.malformed"
        raise _refuse(rule, text, e.lineno or None) from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:  # belt and braces: _screen saw none
        raise _refuse("xml.dtd-forbidden", "a DOCTYPE (DTD, entity declarations) is not allowed", 1)
    if _too_deep(root, limits.max_depth):
        raise _refuse("xml.too-deep", f"document is nested deeper than {limits.max_depth}")
    for el in root.iter(f"{{{XINCLUDE_NS}}}*"):
        raise _refuse("xml.xinclude-forbidden", "XInclude is not allowed", el.sourceline)
    return root
