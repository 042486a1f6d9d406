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
    """Whether the parsed text may not be NFC: one check of the whole document, at C speed, instead of a walk
    over every element (which cost a third of reading the bench's Swedish order).

    A document that is NFC as a whole has NFC text: a text is a substring, and whatever would compose or
    reorder inside it composes or reorders in the whole too (the reverse does not hold, e.g. '>' + U+0338:
    then the tree is walked). A character reference (`&#x301;`) is ASCII in the bytes but a combining mark
    in the text: a document with one is always walked. The parser accepted the bytes as UTF-8 already.

    Text of Latin-1 characters only (Swedish, and most of Western Europe) is NFC whatever their order: none of
    them decomposes, none is a combining mark, and no two compose (tests/unit/test_normal_form.py checks every
    pair). Telling that (an encode at C speed) costs a fifth of the NFC check it saves.
    """
    if b"&#" in data:
        return True
    if data.isascii():
        return False
    text = data.decode("utf-8", "replace")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return not unicodedata.is_normalized("NFC", text)
    return False
