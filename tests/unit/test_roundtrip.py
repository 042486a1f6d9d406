"""Properties over generated messages: each dialect renders what its XSD accepts and reads back the
same message, and translation through the other dialect keeps every business field."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from broker.contract.dialect import DIALECTS, read
from broker.model.codes import Side
from broker.model.messages import MESSAGE_TYPES, Message
from broker.translation import forward
from tests.support.profiles import at_most
from tests.support.strategies import business_view, messages

CUSTOMER = DIALECTS[Side.CUSTOMER]
SESAM2 = DIALECTS[Side.SESAM2]
BOTH_SIDES = sorted(t.__name__ for t in SESAM2.binding.by_type)

quick = settings(max_examples=at_most(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])


EVERY_BINDING = [(d, t.__name__) for d in Side for t in DIALECTS[d].binding.by_type]


@pytest.mark.parametrize(("dialect", "type_name"), EVERY_BINDING)
@quick
@given(data=st.data())
def test_render_is_schema_valid_and_reads_back_the_same(dialect: Side, type_name: str, data: st.DataObject) -> None:
    xml = DIALECTS[dialect]
    message = data.draw(messages(MESSAGE_TYPES[type_name]))
    parsed = read(xml.render(message))
    assert parsed.problems == []
    assert parsed.message == message


def _via(message: Message, first: Side, second: Side) -> Message:
    there = read(DIALECTS[first].render(forward(message)))
    assert there.problems == [], there.problems
    assert there.message is not None
    back = read(DIALECTS[second].render(forward(there.message)))
    assert back.problems == [], back.problems
    assert back.message is not None
    return back.message


@pytest.mark.parametrize("type_name", BOTH_SIDES)
@quick
@given(data=st.data())
def test_customer_to_sesam2_and_back_keeps_every_business_field(type_name: str, data: st.DataObject) -> None:
    message = data.draw(messages(MESSAGE_TYPES[type_name]))
    assert business_view(_via(message, Side.SESAM2, Side.CUSTOMER)) == business_view(message)


@pytest.mark.parametrize("type_name", BOTH_SIDES)
@quick
@given(data=st.data())
def test_sesam2_to_customer_and_back_keeps_every_business_field(type_name: str, data: st.DataObject) -> None:
    message = data.draw(messages(MESSAGE_TYPES[type_name]))
    assert business_view(_via(message, Side.CUSTOMER, Side.SESAM2)) == business_view(message)


@quick
@given(message=messages(MESSAGE_TYPES["CustomerOrder"]))
def test_translation_renews_the_envelope_with_a_stable_id(message: Message) -> None:
    first, again = forward(message), forward(message)
    assert first.header.message_id == again.header.message_id != message.header.message_id
    assert first.header.causation_id == message.header.message_id
    assert first.header.correlation_id == message.header.correlation_id
