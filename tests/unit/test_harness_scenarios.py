"""Scenarios: every shipped one runs and makes sense; a broken file says which file, which step, what."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.harness import scenarios
from adapters.harness.generator import STOCKHOLM, Generator
from adapters.harness.sesam2_sim import Sesam2Simulator
from broker.contract.dialect import DIALECTS
from broker.model import messages as m
from broker.model.codes import ArticleStatus, Side
from broker.translation import derived_id
from tests.support.harness import valid

START = datetime(2026, 5, 4, 8, 0, tzinfo=STOCKHOLM)
SHIPPED = sorted(scenarios.shipped())


def test_the_brief_s_flows_are_shipped() -> None:
    flows = {name: [s.type_name for s in scenarios.find(name).steps] for name in SHIPPED}
    expected = [
        ["CustomerOrder", "OrderConfirmation", "DeliveryDelay", "DeliveryReceipt"],
        ["PickupOrder", "ReturnReceipt", "PickupConfirmation"],
        ["FaultReport", "FaultReportAnswer"],
        ["BufferStockReport", "CustomerOrder", "OrderConfirmation", "DeliveryNote"],
        ["WorkOrder", "WorkOrderCompleted"],
    ]
    for flow in expected:
        assert any([t for t in types if t in flow] == flow for types in flows.values()), flow


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_shipped_scenario_yields_valid_messages_in_a_sensible_order(name: str, seed: int) -> None:
    scenario = scenarios.find(name)
    g = Generator(seed, customers=("1001", "1002"), start=START)
    sent = list(scenarios.run(scenario, g, Sesam2Simulator(seed), customer="1002"))
    assert [(side, type(x).__name__) for side, x in sent] == [(s.side, s.type_name) for s in scenario.steps]
    times = [x.header.sent_at for _, x in sent]
    assert times == sorted(times)
    by_step = {s.number: x for s, (_, x) in zip(scenario.steps, sent, strict=True)}
    for step, (side, message) in zip(scenario.steps, sent, strict=True):
        dialect = DIALECTS[Side.CUSTOMER if side is Side.CUSTOMER else Side.SESAM2]
        assert valid(dialect.render(message)).message == message
        # A register update is a broadcast: it names no customer.
        assert message.header.customer_number == (None if step.type_name == "ArticleRegisterUpdate" else "1002")
        if step.answers is not None:
            subject = by_step[step.answers]
            assert message.header.correlation_id == subject.header.correlation_id
            # caused by what SESAM2 received: the broker's translation of the subject
            assert message.header.causation_id == derived_id(subject.header.message_id, "translated")


def test_steps_refer_to_earlier_steps() -> None:
    g = Generator(5, start=START)
    by_type = {type(x).__name__: x for _, x in scenarios.run(scenarios.find("pickup-return"), g, Sesam2Simulator(5))}
    pickup, receipt = by_type["PickupOrder"], by_type["ReturnReceipt"]
    assert isinstance(pickup, m.PickupOrder) and isinstance(receipt, m.ReturnReceipt)
    assert receipt.pickup_id == pickup.pickup_id
    by_type = {
        type(x).__name__: x for _, x in scenarios.run(scenarios.find("buffer-replenishment"), g, Sesam2Simulator())
    }
    report, order, note = by_type["BufferStockReport"], by_type["CustomerOrder"], by_type["DeliveryNote"]
    assert isinstance(report, m.BufferStockReport) and isinstance(order, m.CustomerOrder)
    assert isinstance(note, m.DeliveryNote)
    assert report.buffer_store_id == order.delivery.buffer_store_id == note.buffer_store_id
    by_type = {type(x).__name__: x for _, x in scenarios.run(scenarios.find("address-query"), g, Sesam2Simulator())}
    query, reply = by_type["PatientAddressQuery"], by_type["PatientAddressReply"]
    assert isinstance(query, m.PatientAddressQuery) and isinstance(reply, m.PatientAddressReply)
    assert (reply.query_id, reply.patient.patient_id) == (query.query_id, query.patient_id)


def test_invoice_and_register_steps() -> None:
    scenario = scenarios.parse(
        {
            "name": "month-end",
            "steps": [
                {"from": "customer", "type": "CustomerOrder", "with": {"variant": "unit"}},
                {"from": "sesam2", "type": "OrderConfirmation"},
                {"from": "sesam2", "type": "InvoiceData"},
                {"from": "sesam2", "type": "ArticleRegisterUpdate"},
            ],
        },
        "month-end.json",
    )
    sent = [x for _, x in scenarios.run(scenario, Generator(1, start=START), Sesam2Simulator(1))]
    order, invoice = sent[0], sent[2]
    assert isinstance(order, m.CustomerOrder) and isinstance(invoice, m.InvoiceData)
    assert {line.order_id for line in invoice.lines} == {order.order_id}
    for message in sent[1:]:
        valid(DIALECTS[Side.SESAM2].render(message))


def _step(side: str, type_name: str, **extra: Any) -> dict[str, Any]:
    return {"from": side, "type": type_name, **extra}


ORDER = _step("customer", "CustomerOrder")
BROKEN: list[tuple[Any, str]] = [
    ([], "expected a JSON object"),
    ({"name": "x", "steps": [], "colour": 1}, "unknown key(s) colour"),
    ({"name": "x", "steps": []}, '"steps" must be a non-empty list'),
    ({"steps": [ORDER]}, '"name" must be a non-empty string'),
    ({"name": "x", "customer": "R1", "steps": [ORDER]}, '"customer": customer-number.format: expected 4 to 8 digits'),
    ({"name": "x", "steps": [_step("hmc", "CustomerOrder")]}, 'step 1: "from" must be "customer" or "sesam2"'),
    (
        {"name": "x", "steps": [_step("customer", "OrderConfirmation")]},
        'step 1: customer does not send "OrderConfirmation"',
    ),
    ({"name": "x", "steps": [_step("sesam2", "CustomerOrder")]}, 'step 1: sesam2 does not send "CustomerOrder"'),
    (
        {"name": "x", "steps": [_step("sesam2", "OrderConfirmation")]},
        "step 1: OrderConfirmation answers a CustomerOrder",
    ),
    (
        {"name": "x", "steps": [ORDER, _step("sesam2", "WorkOrderCompleted")]},
        "step 2: WorkOrderCompleted answers a WorkOrder, and no earlier step sends one",
    ),
    (
        {"name": "x", "steps": [ORDER, _step("sesam2", "OrderConfirmation", answers=2)]},
        'step 2: "answers" must be the number of an earlier step (1 to 1)',
    ),
    (
        {"name": "x", "steps": [_step("customer", "WorkOrder"), ORDER, _step("sesam2", "OrderCancelled", answers=1)]},
        "step 3: OrderCancelled answers a CustomerOrder, but step 1 is a WorkOrder",
    ),
    ({"name": "x", "steps": [_step("customer", "CustomerOrder", **{"with": {"colour": "red"}})]}, 'no option "colour"'),
    (
        {"name": "x", "steps": [_step("customer", "CustomerOrder", **{"with": {"variant": "home"}})]},
        'step 1: CustomerOrder option "variant" must be one of "patient", "urgent", "unit", "buffer-store", not "home"',
    ),
    (
        {"name": "x", "steps": [_step("customer", "CustomerOrder", **{"with": {"lines": 0}})]},
        'option "lines" must be a whole number from 1 to 20, not 0',
    ),
    (
        {"name": "x", "steps": [ORDER, _step("sesam2", "DeliveryReceipt")]},
        'step 2: DeliveryReceipt needs step 1 (CustomerOrder) sent with "variant": "patient"',
    ),
    (
        {"name": "x", "steps": [_step("customer", "FaultReport"), _step("sesam2", "FaultReportAnswer")]},
        '"answer_requested": true',
    ),
    (
        {"name": "x", "steps": [ORDER, _step("sesam2", "DeliveryDelay", **{"with": {"line": 2}})]},
        'step 2: DeliveryDelay of line 2 needs step 1 sent with "lines": 2 or more',
    ),
    ({"name": "x", "steps": [ORDER, _step("sesam2", "InvoiceData")]}, "put an OrderConfirmation step before it"),
    ({"name": "x", "steps": [_step("customer", "WorkOrder", answers=1)]}, "WorkOrder answers no earlier step"),
]


@pytest.mark.parametrize(("data", "error"), BROKEN)
def test_a_broken_scenario_says_what_and_where(tmp_path: Path, data: Any, error: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(scenarios.ScenarioError) as caught:
        scenarios.find(str(path))
    assert str(caught.value).startswith(f"{path}: ")
    assert error in str(caught.value)


def test_broken_json_and_unknown_names(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"name": "x",\n "steps": [,]}', encoding="utf-8")
    with pytest.raises(scenarios.ScenarioError, match=r"bad.json: line 2 column \d+: not valid JSON"):
        scenarios.find(str(path))
    with pytest.raises(scenarios.ScenarioError, match=r"no such file, nor a shipped scenario .*order-delay-delivery"):
        scenarios.find("no-such-scenario")


def test_the_register_scenario_withdraws_the_article_the_orders_name() -> None:
    scenario = scenarios.find("article-withdrawn")
    g = Generator(7, customers=("1002",), start=START)
    first, update, again = (x for _, x in scenarios.run(scenario, g, Sesam2Simulator(7), customer="1002"))
    assert isinstance(first, m.CustomerOrder) and isinstance(again, m.CustomerOrder)
    assert isinstance(update, m.ArticleRegisterUpdate)
    assert first.lines[0].article_number == again.lines[0].article_number == "181210"
    statuses = {a.article_number: a.status for a in update.articles}
    assert statuses["181210"] is ArticleStatus.WITHDRAWN
    assert [s.rejected for s in scenario.steps] == [False, False, True]


def test_the_withdrawal_scenario_withdraws_the_order_it_sent() -> None:
    scenario = scenarios.find("order-withdrawal")
    g = Generator(8, customers=("1002",), start=START)
    order, _, withdrawal, cancelled = (x for _, x in scenarios.run(scenario, g, Sesam2Simulator(8), customer="1002"))
    assert isinstance(order, m.CustomerOrder) and isinstance(withdrawal, m.OrderWithdrawal)
    assert isinstance(cancelled, m.OrderCancelled)
    assert withdrawal.order_id == cancelled.order_id == order.order_id
    assert withdrawal.header.schema_version == "1.1"
