"""Read and write plans: a binding's nodes compiled once per (dialect, message type) into closures.

Walking the Leaf/Node description on every message (isinstance tests, path joins, a find() per
wrapper, the codec looked up per field) made binding the bench's 2 KB order cost 62 us; the plans
decide all that at start-up. What is left (about 48 us) is mostly lxml's element access (14 us for
the children's proxies and tags), the identifier rules (15) and the model's constructors (8).

Reading keeps the walk's contract: fields are visited in the mapping table's order (so problems come
in that order), the first element of a name wins, and an element path is built only for a problem.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from typing import Any

from lxml import etree

from broker.contract import codecs as c
from broker.contract import identifiers
from broker.contract.nodes import Context, Leaf, Node, leaves
from broker.model.messages import Problem
from broker.model.types import IdKind
from broker.privacy import mask_identifier

Firsts = dict[Any, etree._Element]  # an element's first child per tag
# Build one object from its element: (element, its first child per tag, element path, context).
Build = Callable[[etree._Element, Firsts, str, Context], Any]
# One field (or group of fields) of a read: adds to `out`, or adds problems to the context.
ReadStep = Callable[[etree._Element, Firsts, str, dict[str, Any], Context], None]
# One field (or group) of a write: appends what the object holds to the element.
WriteStep = Callable[[Any, etree._Element], None]


class Names:
    """Namespace-qualified tag names of one dialect, prepared once."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def tags(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{{{self.namespace}}}{n}" for n in names)


# ---------------------------------------------------------------- read


def first_children(el: etree._Element) -> Firsts:
    """The first child of each tag, in one pass over the children (a find() per field costs more)."""
    first: Firsts = {}
    for sub in el:
        first.setdefault(sub.tag, sub)
    return first


def problem(ctx: Context, rule: str, path: str, el: etree._Element, message: str, value: str | None = None) -> None:
    ctx.problems.append(Problem(rule=rule, message=message, path=path, line=el.sourceline, value=value))


def builder(node: Node, names: Names) -> Build:
    """Build node.cls from an element, or return None when reading it added problems."""
    steps = read_steps(node, names)
    cls = node.cls

    def build(el: etree._Element, first: Firsts, path: str, ctx: Context) -> Any:
        before = len(ctx.problems)
        values: dict[str, Any] = {}
        for step in steps:
            step(el, first, path, values, ctx)
        return cls(**values) if len(ctx.problems) == before else None

    return build


def read_steps(node: Node, names: Names) -> list[ReadStep]:
    steps: list[ReadStep] = []
    for child in node.children:
        if isinstance(child, Leaf):
            steps.append(_leaf_reader(child, names))
        elif child.transparent and not child.names:
            steps.extend(read_steps(child, names))  # the same element: its fields are the parent's
        elif child.transparent:
            steps.append(_wrapper_reader(child, names))
        elif child.items is not None:
            steps.append(_repeat_reader(child, names))
        elif child.names:
            steps.append(_group_reader(child, names))
        else:
            steps.append(_flattened_reader(child, names))
    return steps


def _tag(child: Leaf | Node) -> str:
    """The qualified tag of a field or group's one element: a key into its parent's first children.

    Only repeats have paths of several elements (Lines/Line); the writer's prototypes need the same.
    """
    if len(child.names) != 1:
        raise TypeError(f"{child.attr}: a path of several elements is supported for repeats only")
    return child.qpath


def _suffix(names: tuple[str, ...]) -> str:
    return "".join(f"/{n}" for n in names)


def _leaf_reader(leaf: Leaf, names: Names) -> ReadStep:
    tag = _tag(leaf)
    attr, optional, suffix = leaf.attr, leaf.optional, _suffix(leaf.names)
    missing = f"{leaf.names[-1]} is required"
    codec = leaf.codec
    # Identifiers decode to the text itself and then go through their rule; text is checked for blanks.
    decode = None if isinstance(codec, c.IdentifierCodec) else codec.decode
    kind = leaf.id_kind
    check = identifiers.check
    mask = kind is IdKind.PATIENT
    # Part of an address (for a protected patient, where they live), or of where they are registered: not echoed.
    echo = kind not in (IdKind.POSTAL_CODE, IdKind.MUNICIPALITY_CODE)

    def read(el: etree._Element, first: Firsts, path: str, out: dict[str, Any], ctx: Context) -> None:
        found = first.get(tag)
        out[attr] = None
        if found is None:
            if not optional:
                problem(ctx, "schema.required", path + suffix, el, missing)
            return
        text = found.text or ""
        value: Any = text
        if decode is not None:
            try:
                value = decode(text)
            except c.DecodeError as e:
                problem(ctx, f"value.{e.rule}", path + suffix, found, e.message)
                return
            except ValueError:
                problem(ctx, "value.format", path + suffix, found, f"'{text}' cannot be read as {codec.type_name}")
                return
        if kind is not None:
            try:
                value = check(kind, text, reserve_patterns=ctx.reserve_patterns)
            except identifiers.IdentifierError as e:
                shown = mask_identifier(text) if mask else text if echo else None
                problem(ctx, e.rule, path + suffix, found, e.message, shown)
                return
        out[attr] = value

    return read


def _wrapper_reader(node: Node, names: Names) -> ReadStep:
    """A group on the parent object whose fields sit in a wrapper element (SESAM2's HEAD)."""
    tag = _tag(node)
    steps = read_steps(node, names)
    suffix = _suffix(node.names)

    def read(el: etree._Element, first: Firsts, path: str, out: dict[str, Any], ctx: Context) -> None:
        wrapper = first.get(tag)
        if wrapper is None:
            problem(ctx, "schema.required", path + suffix, el, "element missing")
            return
        inner = first_children(wrapper)
        for step in steps:
            step(wrapper, inner, path + suffix, out, ctx)

    return read


def _group_reader(node: Node, names: Names) -> ReadStep:
    """A nested object in its own element (a person, an address in the customer dialect)."""
    tag = _tag(node)
    build = builder(node, names)
    attr, optional, suffix = node.attr, node.optional, _suffix(node.names)
    missing = f"{node.names[-1]} is required"

    def read(el: etree._Element, first: Firsts, path: str, out: dict[str, Any], ctx: Context) -> None:
        wrapper = first.get(tag)
        if wrapper is None:
            if not optional:
                problem(ctx, "schema.required", path + suffix, el, missing)
            out[attr] = None
            return
        out[attr] = build(wrapper, first_children(wrapper), path + suffix, ctx)

    return read


def _flattened_reader(node: Node, names: Names) -> ReadStep:
    """A nested object whose fields sit among its parent's (SESAM2): there when any of them is."""
    tags = [_tag(leaf) for leaf in leaves(node)]
    build = builder(node, names)
    attr, optional = node.attr, node.optional

    def read(el: etree._Element, first: Firsts, path: str, out: dict[str, Any], ctx: Context) -> None:
        if optional and all(tag not in first for tag in tags):
            out[attr] = None
            return
        out[attr] = build(el, first, path, ctx)

    return read


def _repeat_reader(node: Node, names: Names) -> ReadStep:
    tags = names.tags(node.names)
    build = builder(node, names)
    attr, suffix = node.attr, _suffix(node.names)

    def read(el: etree._Element, first: Firsts, path: str, out: dict[str, Any], ctx: Context) -> None:
        prefix = path + suffix
        out[attr] = [
            build(item, first_children(item), f"{prefix}[{i}]", ctx)
            for i, item in enumerate(_children_at(el, tags), start=1)
        ]

    return read


def _children_at(el: etree._Element, tags: tuple[str, ...]) -> Iterator[etree._Element]:
    """Elements at a relative path, in document order: what findall() finds, without its path parser."""
    if len(tags) == 1:
        yield from el.iterchildren(tags[0])
        return
    for sub in el.iterchildren(tags[0]):
        yield from _children_at(sub, tags[1:])


# ---------------------------------------------------------------- write
#
# A message type renders straight to text, laid out as lxml's pretty print lays out the same tree
# (tostring(..., xml_declaration=True, encoding="UTF-8", pretty_print=True)): one element per line, two
# spaces per level, an element without children as <Name/>. Compiled once per type into functions that
# append lines; a value is escaped as lxml escapes text, and refused where lxml refuses it. Building the
# tree and serialising it (a prototype copied and filled, then tostring) cost the bench order 68-77 us
# of CPU in SESAM2's dialect; the text 36-50 (the same process, alternating, on a busy machine).

# Append the lines of one element (or of several, for a repeat or a flattened group) for an object.
Emit = Callable[[Any, list[str]], None]
Get = Callable[[Any], Any]

INDENT = "  "
_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # lone surrogates fail at encode()
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}  # \r as a reference survives parsing


def escape(text: str) -> str:
    """Text content as lxml writes it (for text that holds a _SPECIAL character; other text is as it is);
    ValueError, lxml's own message, for what XML 1.0 cannot hold."""
    if _NOT_XML.search(text):
        raise ValueError("All strings must be XML compatible: Unicode or ASCII, no NULL bytes or control characters")
    return _SPECIAL.sub(lambda m: _ESCAPES[m.group()], text)


def writer(node: Node, names: Names) -> Callable[[Any], bytes]:
    """Render a message of node.cls as a document in the dialect's namespace, UTF-8."""
    root = node.names[0]
    emits = _emits(node, 1, _same)
    head = f"<?xml version='1.0' encoding='UTF-8'?>\n<{root} xmlns=\"{names.namespace}\""

    def write(obj: Any) -> bytes:
        lines: list[str] = []
        for emit in emits:
            emit(obj, lines)
        text = f"{head}>\n{''.join(lines)}</{root}>\n" if lines else f"{head}/>\n"
        return text.encode()

    return write


def _emits(node: Node, depth: int, get: Get, siblings: list[str] | None = None) -> list[Emit]:
    """What writes the node's elements, `depth` levels below the root; `get` leads from the written object
    to the node's. `siblings`: the element names written beside them (a flattened node's go to its parent).
    Fields next to each other are written by one function: a call per field was most of the cost."""
    names = [] if siblings is None else siblings
    emits: list[Emit] = []
    fields: list[Field] = []
    for child in node.children:
        if isinstance(child, Leaf):
            fields.append(_field(child, depth, get))
        else:
            if fields:
                emits.append(_fields(fields))
                fields = []
            if not child.names:  # flattened: its elements are the parent's
                emits.extend(_emits(child, depth, get if child.transparent else _then(get, child.attr), names))
                continue
            if child.items is not None:
                emits.append(_repeat(child, depth, get))
            else:
                emits.append(_group(child, depth, get if child.transparent else _then(get, child.attr)))
        if child.names[0] in names:  # a reader takes the first element of a name: a second would be lost
            raise TypeError(f"{node.cls.__name__}: the element name {child.names[0]} is used twice")
        names.append(child.names[0])
    if fields:
        emits.append(_fields(fields))
    return emits


def _same(obj: Any) -> Any:
    return obj


def _then(get: Get, attr: str) -> Get:
    """The attribute of what `get` leads to, or None when that is None (an absent group)."""
    if get is _same:
        return operator.attrgetter(attr)  # no Python frame per field: 47 fields in the bench order

    def get_attr(obj: Any) -> Any:
        owner = get(obj)
        return None if owner is None else getattr(owner, attr)

    return get_attr


# A field: where its value is, how it encodes, its start and end tag (with the line's indent and end).
Field = tuple[Get, Callable[[Any], str], str, str]


def _field(leaf: Leaf, depth: int, get: Get) -> Field:
    _tag(leaf)  # one element
    # Text and identifiers encode as str() does; calling it directly saves a method call per field.
    encode = str if isinstance(leaf.codec, (c.TextCodec, c.IdentifierCodec)) else leaf.codec.encode
    return _then(get, leaf.attr), encode, f"{INDENT * depth}<{leaf.names[0]}>", f"</{leaf.names[0]}>\n"


def _fields(fields: list[Field]) -> Emit:
    """Fields one after the other, each where the object holds a value."""
    special = _SPECIAL.search

    def emit(obj: Any, lines: list[str]) -> None:
        for value_of, encode, start, end in fields:
            value = value_of(obj)
            if value is not None:
                text = encode(value)
                lines.append(start + (text if special(text) is None else escape(text)) + end)

    return emit


def _element(name: str, depth: int, emits: list[Emit]) -> Emit:
    """An element holding `emits`' elements for an object: <Name/> when they wrote nothing."""
    pad = INDENT * depth
    start, end, empty = f"{pad}<{name}>\n", f"{pad}</{name}>\n", f"{pad}<{name}/>\n"

    def emit(obj: Any, lines: list[str]) -> None:
        at = len(lines)
        lines.append(start)
        for child in emits:
            child(obj, lines)
        if len(lines) == at + 1:
            lines[at] = empty
        else:
            lines.append(end)

    return emit


def _group(node: Node, depth: int, get: Get) -> Emit:
    """A group in its own element: there when the object holds the group (always, for HEAD)."""
    _tag(node)  # one element
    element = _element(node.names[0], depth, _emits(node, depth + 1, _same))

    def emit(obj: Any, lines: list[str]) -> None:
        value = get(obj)
        if value is not None:
            element(value, lines)

    return emit


def _repeat(node: Node, depth: int, get: Get) -> Emit:
    """Repeated items, in the wrappers of their path (Lines/Line); nothing at all when there are none."""
    wrappers, item_depth = node.names[:-1], depth + len(node.names) - 1
    item = _element(node.names[-1], item_depth, _emits(node, item_depth + 1, _same))
    opening = [f"{INDENT * (depth + i)}<{name}>\n" for i, name in enumerate(wrappers)]
    closing = [f"{INDENT * (depth + i)}</{name}>\n" for i, name in reversed(list(enumerate(wrappers)))]
    items_of = _then(get, node.attr)

    def emit(obj: Any, lines: list[str]) -> None:
        items = items_of(obj)
        if not items:
            return
        lines.extend(opening)
        for value in items:
            item(value, lines)
        lines.extend(closing)

    return emit
