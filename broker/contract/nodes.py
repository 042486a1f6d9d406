"""What the mapping table compiles to in one dialect: leaves (fields) and nodes (messages, groups, repeats).

binding.py builds them from the table; plans.py turns them into the code that reads and writes
messages; xsd.py and docs.py describe them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from broker.contract import codecs as c
from broker.contract import identifiers
from broker.model.messages import Problem
from broker.model.types import IdKind, Items


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


def nodes(node: Node) -> list[Node]:
    """The node and every node below it."""
    out = [node]
    for child in node.children:
        if isinstance(child, Node):
            out.extend(nodes(child))
    return out


def leaves(node: Node) -> list[Leaf]:
    """Every leaf below the node, in document order."""
    out: list[Leaf] = []
    for child in node.children:
        out.extend([child] if isinstance(child, Leaf) else leaves(child))
    return out
