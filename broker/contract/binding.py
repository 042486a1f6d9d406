"""Compile the mapping table into a per-dialect binding that parses, renders and describes an XSD.

Compiled once per process: the table becomes nodes (nodes.py), and the nodes become a read and a
write plan per message type (plans.py), so the hot path does no type introspection.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Union

from lxml import etree

from broker.contract import codecs as c
from broker.contract import plans
from broker.contract.mapping import SESAM2_CODES, TYPE_MAPS
from broker.contract.nodes import Context, Leaf, Node, nodes
from broker.contract.spec import F, G, Spec, path_in
from broker.model.codes import Side
from broker.model.messages import Header, Message
from broker.model.types import Identifier, IdKind, Items, MonthPrecision, Range, Text

__all__ = ["Binding", "Context", "Leaf", "Node"]


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

    def __init__(self, dialect: Side, namespace: str, version: str | None = None) -> None:
        """`version`: the customer dialect as that version has it (fields marked since a later one left out);
        None: the newest, which reads every version."""
        self.dialect = dialect
        self.namespace = namespace
        self.version = version
        self.codecs: dict[str, c.Codec] = {}
        self.roots: dict[str, Node] = {}  # root element name -> message node
        self.by_type: dict[type[Message], Node] = {}
        for tmap in TYPE_MAPS.values():
            root = tmap.path(dialect)
            if root is None or (version is not None and _version(tmap.since) > _version(version)):
                continue
            node = self._node("", tmap.cls, (root,), False, None, tmap.fields)
            self.roots[root] = node
            self.by_type[tmap.cls] = node
        self.repeated = frozenset(n.names[-1] for root in self.roots.values() for n in nodes(root) if n.items)
        header = next(n for n in node.children if isinstance(n, Node) and n.attr == "header")
        self.header_paths = {
            leaf.attr: self._q(header.names + leaf.names) for leaf in header.children if isinstance(leaf, Leaf)
        }
        names = plans.Names(namespace)
        self._builds = {root: plans.builder(node, names) for root, node in self.roots.items()}
        self._writes = {cls: plans.writer(node, names) for cls, node in self.by_type.items()}

    # ---------------------------------------------------------------- compile

    def _q(self, names: tuple[str, ...]) -> str:
        return "/".join(f"{{{self.namespace}}}{n}" for n in names)

    def _codec(self, cls: type, attr: str, base: Any, meta: tuple[Any, ...]) -> c.Codec:
        compact = self.dialect is Side.SESAM2
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
            if isinstance(spec, F | G) and self._later(spec.since):
                continue  # added by a later version of the customer dialect
            base, opt, meta = _unwrap(hints[spec.attr])
            if isinstance(spec, F) and spec.before is not None and self._later(spec.before[0]):
                base, _, meta = _unwrap(spec.before[1])  # the narrower type the older version published
            if isinstance(spec, F):
                if not sub and opt:
                    continue  # an optional field one dialect does not carry (mapping.py says which)
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

    def _later(self, since: str) -> bool:
        """Whether `since` is later than the version this binding writes (never, for the newest)."""
        return self.version is not None and _version(since) > _version(self.version)

    # ---------------------------------------------------------------- parse

    def parse(self, root: etree._Element, ctx: Context) -> Message | None:
        """Bind a schema-valid tree to its model; None (with ctx.problems) when a rule is broken."""
        name = etree.QName(root).localname
        msg = self._builds[name](root, plans.first_children(root), f"/{name}", ctx)
        assert msg is None or isinstance(msg, Message)
        return msg

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

    def render(self, msg: Message) -> bytes:
        return self._writes[type(msg)](msg)


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


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))
