"""The read and write plans compiled from a binding's nodes, on a small type of their own."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from lxml import etree

from broker.contract import codecs as c
from broker.contract import plans
from broker.contract.nodes import Context, Leaf, Node

NS = "urn:x-test:plans"
NAMES = plans.Names(NS)
TEXT = c.TextCodec(20)


@dataclass(frozen=True, kw_only=True)
class Thing:
    a: str
    b: str | None = None


def leaf(attr: str, *names: str, optional: bool = False) -> Leaf:
    return Leaf(attr, names, "/".join(NAMES.tags(names)), TEXT, optional, None)


def thing(*children: Leaf) -> Node:
    return Node("", Thing, ("Thing",), NAMES.tags(("Thing",))[0], False, None, children)


def test_a_written_thing_reads_back_and_an_absent_optional_field_leaves_no_element() -> None:
    node = thing(leaf("a", "A"), leaf("b", "B", optional=True))
    written = plans.writer(node, NAMES)(Thing(a="x"))
    assert etree.tostring(written) == f'<Thing xmlns="{NS}"><A>x</A></Thing>'.encode()
    assert plans.writer(node, NAMES)(Thing(a="x", b="y"))[1].text == "y"  # the prototype was not changed
    ctx = Context()
    assert plans.builder(node, NAMES)(written, plans.first_children(written), "/Thing", ctx) == Thing(a="x")
    assert ctx.problems == []


def test_a_missing_required_field_is_a_problem_at_its_element_path() -> None:
    node = thing(leaf("a", "A"), leaf("b", "B", optional=True))
    root = etree.fromstring(f'<Thing xmlns="{NS}"><B>y</B></Thing>')
    ctx = Context()
    assert plans.builder(node, NAMES)(root, plans.first_children(root), "/Thing", ctx) is None
    assert [(p.rule, p.path, p.message) for p in ctx.problems] == [("schema.required", "/Thing/A", "A is required")]


def test_a_field_path_of_several_elements_is_refused_when_the_plan_is_compiled() -> None:
    node = thing(leaf("a", "Wrapper", "A"))
    with pytest.raises(TypeError, match="several elements"):
        plans.builder(node, NAMES)
    with pytest.raises(TypeError, match="several elements"):
        plans.writer(node, NAMES)


def test_an_element_name_used_twice_in_one_element_is_refused_by_the_writer() -> None:
    with pytest.raises(TypeError, match="used twice"):
        plans.writer(thing(leaf("a", "A"), leaf("b", "A", optional=True)), NAMES)
