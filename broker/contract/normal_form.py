"""Unicode normal form of incoming text: NFC, before the schema counts characters and before forwarding.

A name typed on a Mac or pasted from a PDF often arrives decomposed (NFD: 'a' + U+030A for 'å'); the
schema's maxLength would count it twice and SESAM2 would store a second spelling of the same name.
Normalising the element text (never the raw bytes: NFC could fold '>' + U+0338 into one character and
break the markup) keeps one spelling everywhere after the parse.
"""

from __future__ import annotations

import unicodedata

from lxml import etree


def normalise_tree(root: etree._Element) -> None:
    """Rewrite every element text and tail of the tree in NFC (in place)."""
    for el in root.iter():
        text = el.text
        if text and not text.isascii() and not unicodedata.is_normalized("NFC", text):
            el.text = unicodedata.normalize("NFC", text)
        tail = el.tail
        if tail and not tail.isascii() and not unicodedata.is_normalized("NFC", tail):
            el.tail = unicodedata.normalize("NFC", tail)


def needs_normalising(data: bytes) -> bool:
    """Only a document with non-ASCII bytes can hold text that is not NFC (the common case costs one scan)."""
    return not data.isascii()
