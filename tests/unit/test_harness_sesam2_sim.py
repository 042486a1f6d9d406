"""The SESAM2 simulator: valid, correlated answers in SESAM2's dialect, decided by its behaviour."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.harness.generator import INBOUND_NAMES, STOCKHOLM, Generator
from adapters.harness.sesam2_sim import Behaviour, DeliveredLine, Sesam2Simulator, sesam2_order_number
from broker.contract.dialect import DIALECTS
from broker.model import messages as m
from broker.model.codes import BillingForm, Side
from broker.translation import derived_id, forward
from tests.support.harness import valid
from tests.support.profiles import at_most

CUSTOMER = DIALECTS[Side.CUSTOMER]
SESAM2 = DIALECTS[Side.SESAM2]
START = datetime(2026, 3, 2, 9, 0, tzinfo=STOCKHOLM)
NOW = datetime(2026, 3, 2, 9, 5, tzinfo=STOCKHOLM)
EVERYTHING = Behaviour(cancel_ratio=0, confirm_ratio=1, delay_ratio=1, receipt_ratio=1)
CANCEL_ALL = Behaviour(cancel_ratio=1)
seeds = st.integers(0, 2**32)


def received(message: m.Message) -> m.Message:
    """The message as SESAM2 receives it: translated by the broker, read from the SESAM2 dialect."""
    parsed = valid(SESAM2.render(forward(message, now=message.header.sent_at)))
    assert parsed.message is not None
    return parsed.message


def inbound(seed: int, n: int = 40) -> list[m.Message]:
    g = Generator(seed, customers=("1001", "1002"), start=START)
    return [x for x in g.mix(n) if type(x) in SESAM2.binding.by_type] + [
        g.fault_report(answer_requested=True),
        g.customer_order(variant="buffer-store"),
        g.customer_order(variant="patient", lines=3),
    ]


@settings(max_examples=at_most(15), deadline=None)
@given(seed=seeds, behaviour=st.sampled_from([Behaviour(), EVERYTHING, CANCEL_ALL]))
def test_every_answer_is_valid_and_correlated(seed: int, behaviour: Behaviour) -> None:
    sim = Sesam2Simulator(seed, behaviour)
    for message in inbound(seed):
        got = received(message)
        for answer in sim.answer(got, now=NOW):
            parsed = valid(SESAM2.render(answer))
            assert parsed.message == answer
            valid(CUSTOMER.render(forward(answer)))  # and the broker can pass it on to the customer
            header = answer.header
            assert header.sender_system == "SESAM2"
            assert header.message_id == derived_id(got.header.message_id, f"sesam2/{type(answer).__name__}")
            assert header.causation_id == got.header.message_id
            assert header.customer_number == message.header.customer_number
            assert header.correlation_id == message.header.correlation_id


def _types(answers: list[m.Message]) -> list[str]:
    return [type(a).__name__ for a in answers]


def test_what_sesam2_answers_to_each_type() -> None:
    g = Generator(4, start=START)
    sim = Sesam2Simulator(4, EVERYTHING)
    home, store, unit = (received(g.customer_order(variant=v)) for v in ("patient", "buffer-store", "unit"))
    assert _types(sim.answer(home)) == ["OrderConfirmation", "DeliveryDelay", "DeliveryReceipt"]
    assert _types(sim.answer(store)) == ["OrderConfirmation", "DeliveryDelay", "DeliveryNote"]
    assert _types(sim.answer(unit)) == ["OrderConfirmation", "DeliveryDelay"]  # a ward signs nothing
    assert _types(sim.answer(received(g.buffer_withdrawal()))) == ["OrderConfirmation"]
    assert _types(sim.answer(received(g.work_order()))) == ["WorkOrderCompleted"]
    assert _types(sim.answer(received(g.pickup_order()))) == ["PickupConfirmation"]
    assert _types(sim.answer(received(g.fault_report(answer_requested=True)))) == ["FaultReportAnswer"]
    assert sim.answer(received(g.fault_report(answer_requested=False))) == []
    for name in ("OrthopaedicReferral", "ReturnReceipt", "BufferStockReport", "PatientAddressReply"):
        assert sim.answer(received(g.message(name))) == [], name  # a 1.0 referral: its sender has no answer type
    on_1_1 = Generator(4, start=START, versions={"1001": "1.1"})
    assert _types(sim.answer(received(on_1_1.orthopaedic_referral()))) == ["OrthopaedicReferralAnswer"]

    cancelling = Sesam2Simulator(4, CANCEL_ALL)
    assert _types(cancelling.answer(home)) == ["OrderCancelled"]
    assert _types(cancelling.answer(received(g.work_order()))) == ["WorkOrderCancelled"]
    assert _types(cancelling.answer(received(g.pickup_order()))) == ["PickupCancelled"]
    silent = Sesam2Simulator(4, Behaviour(cancel_ratio=0, confirm_ratio=0))
    assert silent.answer(home) == []


def test_answers_are_a_function_of_the_message() -> None:
    g = Generator(8, start=START)
    orders = [received(g.customer_order()) for _ in range(20)]
    one, two = Sesam2Simulator(8), Sesam2Simulator(8)
    assert [one.answer(o, now=NOW) for o in orders] == [two.answer(o, now=NOW) for o in reversed(orders)][::-1]


def test_confirmation_dates_lines_and_order_number() -> None:
    g = Generator(6, start=START)
    sim = Sesam2Simulator(6, EVERYTHING)
    order = g.customer_order(variant="patient", lines=3)
    got = received(order)
    confirmation, delay, receipt = sim.answer(got, now=NOW)
    assert isinstance(confirmation, m.OrderConfirmation)
    assert isinstance(delay, m.DeliveryDelay) and isinstance(receipt, m.DeliveryReceipt)
    assert [c.line_number for c in confirmation.lines] == [1, 2, 3]
    assert all(
        c.delivery_date > order.header.sent_at.date() and c.delivery_date.weekday() < 5 for c in confirmation.lines
    )
    assert delay.new_delivery_date > min(c.delivery_date for c in confirmation.lines)
    number = sesam2_order_number(got)
    assert len(number) == 10 and number.isdigit() and number == sesam2_order_number(received(order))
    assert confirmation.sesam2_order_number == delay.sesam2_order_number == receipt.sesam2_order_number == number
    individual = {c.line_number: c.individual_number for c in confirmation.lines}
    assert {d.line_number: d.individual_number for d in receipt.lines} == individual


@settings(max_examples=at_most(40), deadline=None)
@given(
    lines=st.lists(
        st.tuples(
            st.sampled_from(["181210", "120606", "12-TIPPSKYDD", "043306"]),
            st.integers(1, 20),
            st.sampled_from(list(BillingForm)),
            st.dates(date(2026, 9, 1), date(2026, 11, 30)) | st.none(),
            st.none() | st.decimals(0, 99999, places=2, allow_nan=False, allow_infinity=False),
        ),
        max_size=12,
    )
)
def test_invoice_totals_are_the_sum_of_quantity_times_price(
    lines: list[tuple[str, int, BillingForm, date | None, Decimal | None]],
) -> None:
    sim = Sesam2Simulator(1)
    delivered = [
        DeliveredLine(f"WS-1001-2026-{i:06d}", "4100000001", a, q, f, d, None, p)
        for i, (a, q, f, d, p) in enumerate(lines)
    ]
    invoice = sim.invoice_data("1001", date(2026, 10, 1), delivered, now=NOW)
    billed = [x for x in delivered if x.delivered_on is None or x.delivered_on.month == 10]
    if not billed:
        assert invoice is None
        return
    assert invoice is not None
    assert len(invoice.lines) == len(billed)
    for line, source in zip(invoice.lines, billed, strict=True):
        price = (
            source.unit_price if source.unit_price is not None else sim.catalog.articles[source.article_number].price
        )
        assert line.unit_price == price.quantize(Decimal("0.01"))
        assert line.amount == line.unit_price * line.quantity
        assert line.billing_form is source.billing_form
    assert invoice.total_amount == sum(line.amount for line in invoice.lines)
    assert invoice.period == date(2026, 10, 1) and invoice.invoice_number == "FU-1001-202610"
    assert valid(SESAM2.render(invoice)).message == invoice


def test_what_sesam2_sends_on_its_own_is_valid() -> None:
    sim = Sesam2Simulator(2)
    register = sim.article_register_update(now=NOW)
    assert register.header.customer_number is None  # a broadcast
    assert len(register.articles) == len(sim.catalog.articles)
    assert register.header.message_id == sim.article_register_update(now=NOW).header.message_id
    query = sim.patient_address_query("1001", "194503079818", now=NOW)
    assert query.header.correlation_id == query.query_id
    for message in (register, query):
        valid(SESAM2.render(message))
        valid(CUSTOMER.render(forward(message)))
    g = Generator(2, start=START)
    reply = g.patient_address_reply(query=query)
    assert (reply.query_id, reply.patient.patient_id) == (query.query_id, "194503079818")
    valid(CUSTOMER.render(reply))


def test_an_article_without_a_price_is_refused_clearly() -> None:
    line = DeliveredLine("WS-1", "4100000001", "UNKNOWN-1", 1, BillingForm.SALE, None)
    with pytest.raises(ValueError, match="UNKNOWN-1 is not in the catalog"):
        Sesam2Simulator(1).invoice_data("1001", date(2026, 10, 1), [line])


def test_behaviour_ratios_are_checked() -> None:
    with pytest.raises(ValueError, match="delay_ratio must be between 0 and 1"):
        Behaviour(delay_ratio=1.5)


def test_every_inbound_type_is_covered() -> None:
    assert {type(x).__name__ for x in inbound(3, 400)} >= set(INBOUND_NAMES) - {"OrderStatusQuery"}


@settings(max_examples=at_most(30), deadline=None)
@given(seed=seeds, acute=st.booleans())
def test_sesam2_answers_a_referral_sent_in_1_1_with_an_appointment(seed: int, acute: bool) -> None:
    g = Generator(seed, customers=("1001", "1002"), start=START, versions={"1001": "1.1", "1002": "1.0"})
    sim = Sesam2Simulator(seed)
    new, old = (received(g.orthopaedic_referral(customer, acute=acute)) for customer in ("1001", "1002"))
    assert isinstance(new, m.OrthopaedicReferral) and new.header.schema_version == "1.1"
    assert sim.answer(old, now=NOW) == []  # 1.0 has no OrthopaedicReferralAnswer: the broker would park it
    (answer,) = sim.answer(new, now=NOW)
    assert isinstance(answer, m.OrthopaedicReferralAnswer)
    assert valid(SESAM2.render(answer)).message == answer
    assert valid(CUSTOMER.render(forward(answer), "1.1")).message is not None
    assert answer.referral_id == new.referral_id and answer.header.correlation_id == new.header.correlation_id
    assert answer.sesam2_order_number == sesam2_order_number(new) and answer.sesam2_order_number.startswith("81")
    assert answer.appointment_at is not None and answer.clinic and answer.clinic in answer.answer
    seen = answer.appointment_at.astimezone(STOCKHOLM).date()
    sent = new.header.sent_at.astimezone(STOCKHOLM).date()
    assert seen > sent and seen.weekday() < 5
    if acute:
        assert (seen - sent).days <= 3  # the next business day (over a weekend at most)
    assert new.requested_date is None or seen >= new.requested_date
    assert sim.answer(new, now=NOW) == [answer]  # a function of the referral: a redelivery gets the same answer


@settings(max_examples=at_most(20), deadline=None)
@given(seed=seeds)
def test_every_answer_carries_the_schema_version_of_the_message_it_answers(seed: int) -> None:
    """SESAM2's header carries the version of the customer message it came from (its one XSD takes both)."""
    g = Generator(seed, customers=("1001", "1002"), start=START, versions={"1001": "1.1", "1002": "1.0"})
    sim = Sesam2Simulator(seed, EVERYTHING)
    answered = [received(x) for x in g.mix(30) if type(x) in SESAM2.binding.by_type]  # what reaches SESAM2
    answered.append(received(g.orthopaedic_referral("1001")))
    assert {x.header.schema_version for x in answered} == {"1.0", "1.1"}
    for sent in answered:
        for answer in sim.answer(sent, now=NOW):
            assert answer.header.schema_version == sent.header.schema_version, type(answer).__name__
            assert valid(SESAM2.render(answer)).message == answer
