"""Read and write plans: a binding's nodes compiled once per (dialect, message type) into closures.

Walking the Leaf/Node description on every message (isinstance tests, path joins, a find() per
wrapper, the codec looked up per field) made binding the bench's 2 KB order cost 62 us; the plans
decide all that at start-up. What is left (about 48 us) is mostly lxml's element access (14 us for
the children's proxies and tags), the identifier rules (15) and the model's constructors (8).

Reading keeps the walk's contract: fields are visited in the mapping table's order (so problems come
in that order), the first element of a name wins, and an element path is built only for a problem.
"""

from __future__ import annotations

import copy
import operator
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
# A message type renders by copying a prototype: its document with every element it can have (one
# item per repeat, no text), built once. Writing fills the copy in document order: sets each text,
# removes what the message does not hold, and copies the item for further repeats. For the bench's
# order in SESAM2's dialect this took the tree from 58 to about 30 us: an etree.SubElement per element
# cost 0.6 us, a deepcopy of the whole prototype costs 3.

# Fill one child element of the element being written, from the object written there.
Slot = Callable[[etree._Element, Any, etree._Element], None]
Get = Callable[[Any], Any]


def writer(node: Node, names: Names) -> Callable[[Any], etree._Element]:
    """Render a message of node.cls as a tree in the dialect's namespace."""
    prototype = etree.Element(node.qpath, nsmap={None: names.namespace})
    fill = _filler(node, prototype, names)

    def write(obj: Any) -> etree._Element:
        root = copy.deepcopy(prototype)
        fill(root, obj)
        return root

    return write


def _filler(node: Node, prototype: etree._Element, names: Names) -> Callable[[etree._Element, Any], None]:
    """Add the node's elements to its prototype element; return what fills a copy of it from an object."""
    slots = _slots(node, prototype, names, _same)

    def fill(el: etree._Element, obj: Any) -> None:
        for child, slot in zip(list(el), slots, strict=True):
            slot(child, obj, el)

    return fill


def _slots(node: Node, prototype: etree._Element, names: Names, get: Get) -> list[Slot]:
    """One slot per child element of the node's element; `get` leads from the written object to the node's."""
    slots: list[Slot] = []
    for child in node.children:
        if isinstance(child, Node) and not child.names:  # flattened: its elements are the parent's
            slots.extend(_slots(child, prototype, names, get if child.transparent else _then(get, child.attr)))
        elif isinstance(child, Node) and child.items is not None:
            top = etree.SubElement(prototype, names.tags(child.names)[0])
            slots.append(_repeat_slot(child, top, names, get))
        elif isinstance(child, Node):
            fill_group = _filler(child, etree.SubElement(prototype, _tag(child)), names)
            slots.append(_group_slot(fill_group, get if child.transparent else _then(get, child.attr)))
        else:
            etree.SubElement(prototype, _tag(child))
            slots.append(_leaf_slot(child, get))
    tags = [sub.tag for sub in prototype]
    if len(set(tags)) < len(tags):  # the tree walk reused an element of the same name; a copy cannot
        raise TypeError(f"{node.cls.__name__}: an element name is used twice under <{prototype.tag}>")
    return slots


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


def _leaf_slot(leaf: Leaf, get: Get) -> Slot:
    value_of = _then(get, leaf.attr)
    # Text and identifiers encode as str() does; calling it directly saves a method call per field.
    encode = str if isinstance(leaf.codec, (c.TextCodec, c.IdentifierCodec)) else leaf.codec.encode

    def fill(el: etree._Element, obj: Any, parent: etree._Element) -> None:
        value = value_of(obj)
        if value is None:
            parent.remove(el)
        else:
            el.text = encode(value)

    return fill


def _group_slot(fill_group: Callable[[etree._Element, Any], None], get: Get) -> Slot:
    """A group in its own element: there when the object holds the group (always, for HEAD)."""

    def fill(el: etree._Element, obj: Any, parent: etree._Element) -> None:
        value = get(obj)
        if value is None:
            parent.remove(el)
        else:
            fill_group(el, value)

    return fill


def _repeat_slot(node: Node, top: etree._Element, names: Names, get: Get) -> Slot:
    """Repeated items, in the wrappers of their path; the prototype holds one item, copied for the rest."""
    for tag in names.tags(node.names)[1:]:
        top = etree.SubElement(top, tag)
    item_prototype = top
    fill_item = _filler(node, item_prototype, names)
    items_of, depth = _then(get, node.attr), len(node.names) - 1

    def fill(el: etree._Element, obj: Any, parent: etree._Element) -> None:
        items = items_of(obj)
        if not items:
            parent.remove(el)
            return
        item = el
        for _ in range(depth):
            item = item[0]
        for i, value in enumerate(items):
            if i:
                nxt = copy.deepcopy(item_prototype)
                item.addnext(nxt)
                item = nxt
            fill_item(item, value)

    return fill
