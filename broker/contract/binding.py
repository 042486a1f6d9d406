"""Compile the mapping table into a per-dialect binding that parses, renders and describes an XSD.

Compiled once per process: the hot path walks prepared nodes and does no type introspection.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Union

from lxml import etree

from broker.contract import codecs as c
from broker.contract import identifiers
from broker.contract.mapping import SESAM2_CODES, TYPE_MAPS
from broker.contract.spec import Dialect, F, G, Spec, path_in
from broker.model.messages import Header, Message, Problem
from broker.model.types import Identifier, IdKind, Items, MonthPrecision, Range, Text
from broker.privacy import mask_identifier


@dataclass(frozen=True)
class Leaf:
    attr: str
    names: tuple[str, ...]  # element path relative to the enclosing element
    qpath: str  # the same, namespace-qualified, for lxml's find()
    codec: c.Codec
    optional: bool
    id_kind: IdKind | None


@dataclass(frozen=True)
class Node:
    """A message, a nested object (group) or a repeated object; attr '' adds fields to the parent."""

    attr: str
    cls: type
    names: tuple[str, ...]  # wrapper (group) or repeated element (repeat); () = flattened
    qpath: str
    optional: bool
    items: Items | None
    children: tuple[Leaf | Node, ...] = field(default=())

    @property
    def transparent(self) -> bool:
        return self.attr == ""


@dataclass
class Context:
    """What a parse needs besides the tree: identifier policy and where problems go."""

    reserve_patterns: tuple[Any, ...] = identifiers.DEFAULT_RESERVE_PATTERNS
    problems: list[Problem] = field(default_factory=list)


def _unwrap(hint: Any) -> tuple[Any, bool, tuple[Any, ...]]:
    """(base type, optional, Annotated metadata) of a dataclass field's type hint."""
    optional = False
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    meta: tuple[Any, ...] = ()
    if typing.get_origin(hint) is typing.Annotated:
        hint, *rest = typing.get_args(hint)
        meta = tuple(rest)
    return hint, optional, meta


class Binding:
    """One dialect's view of every message type."""

    def __init__(self, dialect: Dialect, namespace: str) -> None:
        self.dialect = dialect
        self.namespace = namespace
        self.codecs: dict[str, c.Codec] = {}
        self.roots: dict[str, Node] = {}  # root element name -> message node
        self.by_type: dict[type[Message], Node] = {}
        for tmap in TYPE_MAPS.values():
            root = tmap.path(dialect)
            if root is None:
                continue
            node = self._node("", tmap.cls, (root,), False, None, tmap.fields)
            self.roots[root] = node
            self.by_type[tmap.cls] = node
        self.repeated = frozenset(n.names[-1] for root in self.roots.values() for n in _nodes(root) if n.items)
        header = next(n for n in node.children if isinstance(n, Node) and n.attr == "header")
        self.header_paths = {
            leaf.attr: self._q(header.names + leaf.names) for leaf in header.children if isinstance(leaf, Leaf)
        }

    # ---------------------------------------------------------------- compile

    def _q(self, names: tuple[str, ...]) -> str:
        return "/".join(f"{{{self.namespace}}}{n}" for n in names)

    def _codec(self, cls: type, attr: str, base: Any, meta: tuple[Any, ...]) -> c.Codec:
        compact = self.dialect is Dialect.SESAM2
        codec: c.Codec
        if cls is Header and attr == "message_type" and compact:
            # SESAM2's control record names the type by its own record name (ORDERS, ORDERBEKR, ...).
            codec = c.CodeListCodec("MessageType", {t.cls.__name__: t.sesam2 for t in TYPE_MAPS.values() if t.sesam2})
        elif any(isinstance(x, Identifier) for x in meta):
            codec = c.IdentifierCodec(next(x for x in meta if isinstance(x, Identifier)).kind.value)
        elif base is str:
            text = next((x for x in meta if isinstance(x, Text)), Text(4000))
            codec = c.TextCodec(text.max_length)
        elif base is bool:
            codec = c.BoolCodec("YesNo", "J", "N") if compact else c.BoolCodec("Boolean", "true", "false")
        elif base is int:
            rng = next((x for x in meta if isinstance(x, Range)), Range(0, 2147483647))
            codec = c.IntCodec(rng.min, rng.max)
        elif base is Decimal:
            codec = c.AmountCodec(in_ore=compact)
        elif base is date and any(isinstance(x, MonthPrecision) for x in meta):
            codec = c.MonthCodec(compact)
        elif base is datetime:
            codec = c.DateTimeCodec(compact)
        elif base is date:
            codec = c.DateCodec(compact)
        elif isinstance(base, type) and issubclass(base, StrEnum):
            table = SESAM2_CODES[base] if compact else {m.value: m.value for m in base}
            codec = c.CodeListCodec(base.__name__, {base(k): v for k, v in table.items()})
        else:  # pragma: no cover - a model field of a type the table cannot carry
            raise TypeError(f"{cls.__name__}.{attr}: no codec for {base!r}")
        # One codec per XSD type name; a clash would make the schema lie about a field.
        known = self.codecs.setdefault(codec.type_name, codec)
        if type(known) is not type(codec) or known.__dict__ != codec.__dict__:
            raise TypeError(f"{cls.__name__}.{attr}: XSD type {codec.type_name} defined twice differently")
        return known

    def _node(
        self,
        attr: str,
        cls: type,
        names: tuple[str, ...],
        optional: bool,
        items: Items | None,
        specs: tuple[Spec, ...],
    ) -> Node:
        hints = typing.get_type_hints(cls, include_extras=True)
        children: list[Leaf | Node] = []
        for spec in specs:
            sub = tuple(p for p in path_in(spec, self.dialect).split("/") if p)
            if isinstance(spec, G) and spec.attr == "":
                children.append(self._node("", cls, sub, False, None, spec.fields))
                continue
            base, opt, meta = _unwrap(hints[spec.attr])
            if isinstance(spec, F):
                if not sub:
                    raise TypeError(f"{cls.__name__}.{spec.attr} has no element in the {self.dialect} dialect")
                children.append(
                    Leaf(
                        spec.attr,
                        sub,
                        self._q(sub),
                        self._codec(cls, spec.attr, base, meta),
                        opt,
                        _kind(meta),
                    )
                )
            elif isinstance(spec, G):
                children.append(self._node(spec.attr, base, sub, opt, None, spec.fields))
            else:
                item_cls = typing.get_args(base)[0]
                bounds = next((x for x in meta if isinstance(x, Items)), Items())
                children.append(self._node(spec.attr, item_cls, sub, bounds.min == 0, bounds, spec.fields))
        return Node(attr, cls, names, self._q(names), optional, items, tuple(children))

    # ---------------------------------------------------------------- parse

    def parse(self, root: etree._Element, ctx: Context) -> Message | None:
        """Bind a schema-valid tree to its model; None (with ctx.problems) when a rule is broken."""
        node = self.roots[etree.QName(root).localname]
        before = len(ctx.problems)
        values: dict[str, Any] = {}
        self._read(node, root, "/" + node.names[0], values, ctx)
        if len(ctx.problems) > before:
            return None
        msg = node.cls(**values)
        assert isinstance(msg, Message)
        return msg

    def _read(self, node: Node, el: etree._Element, path: str, out: dict[str, Any], ctx: Context) -> None:
        # One pass over the children instead of a find() per field: the first element of each name.
        first: dict[object, etree._Element] = {}
        for sub in el:
            first.setdefault(sub.tag, sub)
        for child in node.children:
            if isinstance(child, Leaf):
                found = first.get(child.qpath) if len(child.names) == 1 else el.find(child.qpath)
                out[child.attr] = self._leaf(child, el, found, path, ctx)
            elif child.transparent:
                wrapper = el.find(child.qpath) if child.names else el
                if wrapper is None:
                    self._problem(ctx, "schema.required", f"{path}/{'/'.join(child.names)}", el, "element missing")
                    continue
                self._read(child, wrapper, _join(path, child.names), out, ctx)
            elif child.items is not None:
                out[child.attr] = self._repeat(child, el, path, ctx)
            else:
                out[child.attr] = self._group(child, el, path, ctx)

    def _leaf(self, leaf: Leaf, el: etree._Element, found: etree._Element | None, path: str, ctx: Context) -> Any:
        # The element path of a problem is built only when there is one: this runs for every field.
        if found is None:
            if not leaf.optional:
                self._problem(ctx, "schema.required", _join(path, leaf.names), el, f"{leaf.names[-1]} is required")
            return None
        text = found.text or ""
        try:
            value = leaf.codec.decode(text)
        except c.DecodeError as e:
            self._problem(ctx, f"value.{e.rule}", _join(path, leaf.names), found, e.message)
            return None
        except ValueError:
            message = f"'{text}' cannot be read as {leaf.codec.type_name}"
            self._problem(ctx, "value.format", _join(path, leaf.names), found, message)
            return None
        if leaf.id_kind is not None:
            try:
                value = identifiers.check(leaf.id_kind, text, reserve_patterns=ctx.reserve_patterns)
            except identifiers.IdentifierError as e:
                shown = mask_identifier(text) if leaf.id_kind is IdKind.PATIENT else text
                self._problem(ctx, e.rule, _join(path, leaf.names), found, e.message, shown)
                return None
        return value

    def _group(self, node: Node, el: etree._Element, path: str, ctx: Context) -> Any:
        if node.names:
            wrapper = el.find(node.qpath)
            if wrapper is None:
                if not node.optional:
                    self._problem(ctx, "schema.required", _join(path, node.names), el, f"{node.names[-1]} is required")
                return None
            return self._build(node, wrapper, _join(path, node.names), ctx)
        # Flattened: the group is there when any of its elements is.
        if node.optional and not any(el.find(leaf.qpath) is not None for leaf in _leaves(node)):
            return None
        return self._build(node, el, path, ctx)

    def _repeat(self, node: Node, el: etree._Element, path: str, ctx: Context) -> list[Any]:
        out = []
        for i, item in enumerate(el.findall(node.qpath), start=1):
            out.append(self._build(node, item, f"{_join(path, node.names)}[{i}]", ctx))
        return out

    def _build(self, node: Node, el: etree._Element, path: str, ctx: Context) -> Any:
        before = len(ctx.problems)
        values: dict[str, Any] = {}
        self._read(node, el, path, values, ctx)
        return node.cls(**values) if len(ctx.problems) == before else None

    @staticmethod
    def _problem(
        ctx: Context, rule: str, path: str, el: etree._Element, message: str, value: str | None = None
    ) -> None:
        ctx.problems.append(Problem(rule=rule, message=message, path=path, line=el.sourceline, value=value))

    def element_path(self, cls: type[Message], field: str) -> str:
        """The element path of a model path ("lines[2].amount" -> "/ORDERS/ROW[2]/BELOPPORE")."""
        node = self.by_type[cls]
        path = "/" + node.names[0]
        for step in field.split("."):
            attr, _, index = step.partition("[")
            child = _child(node, attr)
            path = _join(path, child.names)
            if index:
                path += f"[{index}"
            if isinstance(child, Node):
                node = child
        return path

    # ---------------------------------------------------------------- render

    def render(self, msg: Message) -> etree._Element:
        node = self.by_type[type(msg)]
        root = etree.Element(node.qpath, nsmap={None: self.namespace})
        self._write(node, msg, root)
        return root

    def _write(self, node: Node, obj: Any, el: etree._Element) -> None:
        for child in node.children:
            if isinstance(child, Leaf):
                value = getattr(obj, child.attr)
                if value is not None:
                    target = _ensure(el, child.names[:-1], self.namespace)
                    etree.SubElement(target, f"{{{self.namespace}}}{child.names[-1]}").text = child.codec.encode(value)
            elif child.transparent:
                self._write(child, obj, _ensure(el, child.names, self.namespace))
            elif child.items is not None:
                items = getattr(obj, child.attr)
                if items:
                    parent = _ensure(el, child.names[:-1], self.namespace)
                    for item in items:
                        self._write(child, item, etree.SubElement(parent, f"{{{self.namespace}}}{child.names[-1]}"))
            else:
                value = getattr(obj, child.attr)
                if value is not None:
                    self._write(child, value, _ensure(el, child.names, self.namespace))


def _child(node: Node, attr: str) -> Leaf | Node:
    """The child for a model attribute, looking through the transparent groups (HEAD)."""
    for child in node.children:
        if isinstance(child, Node) and child.transparent:
            try:
                found = _child(child, attr)
            except KeyError:
                continue
            return dataclasses.replace(found, names=child.names + found.names)
        if child.attr == attr:
            return child
    raise KeyError(attr)


def _kind(meta: tuple[Any, ...]) -> IdKind | None:
    return next((x.kind for x in meta if isinstance(x, Identifier)), None)


def _join(path: str, names: tuple[str, ...]) -> str:
    return "/".join((path, *names)) if names else path


def _nodes(node: Node) -> list[Node]:
    out = [node]
    for child in node.children:
        if isinstance(child, Node):
            out.extend(_nodes(child))
    return out


def _leaves(node: Node) -> list[Leaf]:
    out: list[Leaf] = []
    for child in node.children:
        out.extend([child] if isinstance(child, Leaf) else _leaves(child))
    return out


def _ensure(el: etree._Element, names: tuple[str, ...], ns: str) -> etree._Element:
    """Reuse the element's last child when it has the name, else append one: keeps document order."""
    for name in names:
        tag = f"{{{ns}}}{name}"
        last = el[-1] if len(el) else None
        el = last if last is not None and last.tag == tag else etree.SubElement(el, tag)
    return el
