"""Read and write plans: a binding's nodes compiled once per (dialect, message type).

Walking the Leaf/Node description on every message (isinstance tests, path joins, a find() per wrapper, the
codec looked up per field) made binding the bench's 2 KB order cost 62 us; the plans decide all that at
start-up. A reader is Python source generated per node and compiled (`_Reader`); a writer is closures that
append lines. What is left of reading is mostly lxml's element access (the children's proxies and tags), the
identifier rules and the model's constructors.

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
    """Build node.cls from an element, or return None when reading it added problems.

    Generated as Python source per node and compiled once (`_Reader`): closures, one per field, cost a call, a
    dict entry and a keyword expansion for each of the bench order's 52 fields. Here every field is a few inline
    statements on locals, and nested groups and repeats call their own generated builders.
    """
    return _Reader(names).build(node)


class _Reader:
    """Writes the source of one node's builder; its constants go into the builder's globals under generated
    names (k1, k2, ...), never into the source text."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.namespace: dict[str, Any] = {
            "first_children": first_children,
            "problem": problem,
            "check": identifiers.check,
            "IdentifierError": identifiers.IdentifierError,
            "DecodeError": c.DecodeError,
            "children_at": _children_at,
        }
        self.lines: list[str] = []

    def const(self, value: Any) -> str:
        name = f"k{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def emit(self, indent: int, line: str) -> None:
        self.lines.append("    " * indent + line)

    def build(self, node: Node) -> Build:
        out: list[str] = []  # the fields, in the mapping table's order: the constructor's keyword arguments
        self._steps(node, "el", "first", "path", out, indent=1)
        args = ", ".join(f"{attr}=v_{attr}" for attr in out)
        source = "\n".join(
            [
                "def build(el, first, path, ctx):",
                "    problems = ctx.problems",
                "    before = len(problems)",
                *self.lines,
                f"    return {self.const(node.cls)}({args}) if len(problems) == before else None",
            ]
        )
        scope: dict[str, Any] = {}
        exec(compile(source, f"<reader of {node.cls.__name__}>", "exec"), self.namespace, scope)
        build: Build = scope["build"]
        return build

    def _steps(self, node: Node, el: str, first: str, path: str, out: list[str], indent: int) -> None:
        for child in node.children:
            if isinstance(child, Leaf):
                self._leaf(child, el, first, path, indent)
                out.append(child.attr)
            elif child.transparent and not child.names:
                self._steps(child, el, first, path, out, indent)  # the same element: its fields are the parent's
            elif child.transparent:
                self._wrapper(child, el, first, path, out, indent)
            else:
                self._nested(child, el, first, path, indent)
                out.append(child.attr)

    def _leaf(self, leaf: Leaf, el: str, first: str, path: str, indent: int) -> None:
        v, e, at = f"v_{leaf.attr}", f"e_{leaf.attr}", f"{path} + {self.const(_suffix(leaf.names))}"
        self.emit(indent, f"{e} = {first}.get({self.const(_tag(leaf))})")
        self.emit(indent, f"{v} = None")
        self.emit(indent, f"if {e} is None:")
        if leaf.optional:
            self.emit(indent + 1, "pass")
        else:
            missing = self.const(f"{leaf.names[-1]} is required")
            self.emit(indent + 1, f"problem(ctx, 'schema.required', {at}, {el}, {missing})")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"text = {e}.text or ''")
        codec = leaf.codec
        # Identifiers decode to the text itself and then go through their rule; text is checked for blanks.
        if isinstance(codec, c.IdentifierCodec):
            self._identifier(leaf, v, e, at, indent + 1)
            return
        cannot = self.const(f"' cannot be read as {codec.type_name}")
        self.emit(indent + 1, "try:")
        self.emit(indent + 2, f"{v} = {self.const(codec.decode)}(text)")
        self.emit(indent + 1, "except DecodeError as x:")
        self.emit(indent + 2, f"problem(ctx, 'value.' + x.rule, {at}, {e}, x.message)")
        self.emit(indent + 1, "except ValueError:")
        self.emit(indent + 2, f"problem(ctx, 'value.format', {at}, {e}, \"'\" + text + {cannot})")
        if leaf.id_kind is not None:
            self.emit(indent + 1, "else:")
            self._identifier(leaf, v, e, at, indent + 2)

    def _identifier(self, leaf: Leaf, v: str, e: str, at: str, indent: int) -> None:
        kind = leaf.id_kind
        assert kind is not None
        # A patient's identifier is masked in a problem; part of an address (for a protected patient, where they
        # live) or of where they are registered is not echoed at all.
        if kind is IdKind.PATIENT:
            shown = f"{self.const(mask_identifier)}(text)"
        elif kind in (IdKind.POSTAL_CODE, IdKind.MUNICIPALITY_CODE):
            shown = "None"
        else:
            shown = "text"
        self.emit(indent, "try:")
        self.emit(indent + 1, f"{v} = check({self.const(kind)}, text, reserve_patterns=ctx.reserve_patterns)")
        self.emit(indent, "except IdentifierError as x:")
        self.emit(indent + 1, f"problem(ctx, x.rule, {at}, {e}, x.message, {shown})")

    def _wrapper(self, node: Node, el: str, first: str, path: str, out: list[str], indent: int) -> None:
        """A group on the parent object whose fields sit in a wrapper element (SESAM2's HEAD)."""
        n = len(self.lines)  # unique names for the wrapper's locals
        w, inner, sub, suffix = f"w{n}", f"f{n}", f"p{n}", self.const(_suffix(node.names))
        self.emit(indent, f"{w} = {first}.get({self.const(_tag(node))})")
        self.emit(indent, f"if {w} is None:")
        self.emit(indent + 1, "; ".join(f"v_{leaf.attr} = None" for leaf in leaves(node)))
        self.emit(indent + 1, f"problem(ctx, 'schema.required', {path} + {suffix}, {el}, 'element missing')")
        self.emit(indent, "else:")
        self.emit(indent + 1, f"{inner} = first_children({w}); {sub} = {path} + {suffix}")
        self._steps(node, w, inner, sub, out, indent + 1)

    def _nested(self, node: Node, el: str, first: str, path: str, indent: int) -> None:
        v, build = f"v_{node.attr}", self.const(_Reader(self.names).build(node))
        if node.items is not None:
            tags, prefix = self.const(self.names.tags(node.names)), f"{path} + {self.const(_suffix(node.names))}"
            self.emit(
                indent,
                f"{v} = [{build}(item, first_children(item), f'{{{prefix}}}[{{i}}]', ctx)"
                f" for i, item in enumerate(children_at({el}, {tags}), start=1)]",
            )
        elif node.names:  # a nested object in its own element (a person, an address in the customer dialect)
            w, suffix = f"w_{node.attr}", self.const(_suffix(node.names))
            self.emit(indent, f"{w} = {first}.get({self.const(_tag(node))})")
            self.emit(indent, f"if {w} is None:")
            self.emit(indent + 1, f"{v} = None")
            if not node.optional:
                missing = self.const(f"{node.names[-1]} is required")
                self.emit(indent + 1, f"problem(ctx, 'schema.required', {path} + {suffix}, {el}, {missing})")
            self.emit(indent, "else:")
            self.emit(indent + 1, f"{v} = {build}({w}, first_children({w}), {path} + {suffix}, ctx)")
        elif node.optional:  # flattened among its parent's fields (SESAM2): there when any of them is
            tags = self.const(frozenset(_tag(leaf) for leaf in leaves(node)))
            self.emit(indent, f"{v} = None if {tags}.isdisjoint({first}) else {build}({el}, {first}, {path}, ctx)")
        else:
            self.emit(indent, f"{v} = {build}({el}, {first}, {path}, ctx)")


def _tag(child: Leaf | Node) -> str:
    """The qualified tag of a field or group's one element: a key into its parent's first children.

    Only repeats have paths of several elements (Lines/Line); the writer's prototypes need the same.
    """
    if len(child.names) != 1:
        raise TypeError(f"{child.attr}: a path of several elements is supported for repeats only")
    return child.qpath


def _suffix(names: tuple[str, ...]) -> str:
    return "".join(f"/{n}" for n in names)


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
