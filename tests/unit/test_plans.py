"""The read and write plans compiled from a binding's nodes, on a small type of their own."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from broker.contract import codecs as c
from broker.contract import plans
from broker.contract.dialect import DIALECTS
from broker.contract.nodes import Context, Leaf, Node
from broker.model.codes import Side
from broker.model.messages import MESSAGE_TYPES
from tests.support.profiles import at_most
from tests.support.strategies import messages

NS = "urn:x-test:plans"
NAMES = plans.Names(NS)
TEXT = c.TextCodec(20)
DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


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
    write = plans.writer(node, NAMES)
    assert write(Thing(a="x")) == f'{DECLARATION}<Thing xmlns="{NS}">\n  <A>x</A>\n</Thing>\n'.encode()
    assert etree.fromstring(write(Thing(a="x", b="y")))[1].text == "y"
    written = etree.fromstring(write(Thing(a="x")))
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


# What the writer's text must equal: lxml's own pretty print of the same tree, which the writer replaced.
LXML = {"xml_declaration": True, "encoding": "UTF-8", "pretty_print": True}


def _lxml_document(a: str) -> bytes:
    root = etree.Element(f"{{{NS}}}Thing", nsmap={None: NS})
    etree.SubElement(root, f"{{{NS}}}A").text = a
    return etree.tostring(root, **LXML)


@given(st.text(max_size=30))
def test_a_field_is_written_as_lxml_writes_it_or_refused_as_lxml_refuses_it(a: str) -> None:
    """Escaping (&, <, >, a carriage return as a reference), characters kept as they are, and what XML
    1.0 cannot hold (control characters, U+FFFE, lone surrogates), each as lxml does it."""
    write = plans.writer(thing(leaf("a", "A")), NAMES)
    try:
        expected: bytes | type[Exception] = _lxml_document(a)
    except (ValueError, UnicodeEncodeError) as e:
        expected = type(e)
    if isinstance(expected, bytes):
        assert write(Thing(a=a)) == expected
        assert etree.fromstring(expected).findtext(f"{{{NS}}}A") == a
    else:
        with pytest.raises(expected):
            write(Thing(a=a))


@pytest.mark.parametrize(("dialect", "type_name"), [(d, t.__name__) for d in Side for t in DIALECTS[d].binding.by_type])
@settings(max_examples=at_most(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_message_is_laid_out_as_lxml_pretty_prints_it(dialect: Side, type_name: str, data: st.DataObject) -> None:
    """Every message type of both dialects: the text is the document lxml would write for the same tree,
    byte for byte (the layout SESAM2 and the customer systems have always received)."""
    message = data.draw(messages(MESSAGE_TYPES[type_name]))
    written = DIALECTS[dialect].render(message)
    tree = etree.fromstring(written, etree.XMLParser(remove_blank_text=True))
    assert etree.tostring(tree, **LXML) == written
