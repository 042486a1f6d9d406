"""Payloads pretty-printed for reading: parsed with the broker's hardened parser (broker/contract/safe_xml.py:
no entities, no network, bounded size and depth), indented; text that is not XML is shown as it is."""

from __future__ import annotations

from lxml import etree

from broker.contract.safe_xml import XmlRefused, parse


def pretty_xml(text: str | None) -> str:
    if not text:
        return ""
    try:
        root = parse(text.encode("utf-8"))
    except (XmlRefused, etree.XMLSyntaxError, ValueError):
        return text
    etree.indent(root, space="  ")
    return str(etree.tostring(root, encoding="unicode"))
