"""The generator: every message it makes is valid on both sides, synthetic, and the same for the same seed."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.harness import synthetic
from adapters.harness.generator import INBOUND_NAMES, ORDER_VARIANTS, STOCKHOLM, Generator
from broker.contract import identifiers, routing
from broker.contract.dialect import DIALECTS
from broker.model import messages as m
from broker.model.codes import AddressKind, ArticleStatus, Priority, Side, WorkOrderKind
from broker.model.types import IdKind
from broker.translation import forward
from tests.support.harness import valid
from tests.support.profiles import at_most

CUSTOMER = DIALECTS[Side.CUSTOMER]
SESAM2 = DIALECTS[Side.SESAM2]
START = datetime(2026, 10, 24, 8, 30, tzinfo=STOCKHOLM)  # the weekend daylight saving time ends
seeds = st.integers(0, 2**32)


def every_kind(g: Generator) -> list[m.Message]:
    """One of every inbound type, and every variant the brief names."""
    out: list[m.Message] = [g.message(name) for name in INBOUND_NAMES]
    out += [g.customer_order(variant=v) for v in ORDER_VARIANTS]
    out += [g.work_order(kind=k) for k in WorkOrderKind]
    out += [g.fault_report(answer_requested=a) for a in (True, False)]
    out += [g.orthopaedic_referral(acute=a) for a in (True, False)]
    return out


def generator(seed: int, **kwargs: Any) -> Generator:
    return Generator(seed, customers=("1001", "20345"), start=START, **kwargs)


@settings(max_examples=at_most(30), deadline=None)
@given(seed=seeds)
def test_every_message_is_valid_in_the_customer_dialect_and_translated_in_sesam2s(seed: int) -> None:
    g = generator(seed)
    for message in every_kind(g):
        parsed = valid(CUSTOMER.render(message))
        assert parsed.message == message  # nothing lost: what was generated is what the broker reads
        assert g.catalog.check(message) == []  # active catalog articles only
        if type(message) in SESAM2.binding.by_type:  # OrderStatusQuery stays with the broker
            valid(SESAM2.render(forward(message)))


@settings(max_examples=at_most(10), deadline=None)
@given(seed=seeds)
def test_the_same_seed_gives_the_same_messages(seed: int) -> None:
    first = [CUSTOMER.render(x) for x in generator(seed).mix(40)]
    again = [CUSTOMER.render(x) for x in generator(seed).mix(40)]
    other = [CUSTOMER.render(x) for x in generator(seed + 1).mix(40)]
    assert first == again
    assert first != other


def test_a_live_clock_changes_only_the_times() -> None:
    live = Generator(7, customers=("1001",), start=START, clock=lambda: datetime(2027, 1, 5, 12, 0, tzinfo=STOCKHOLM))
    simulated = Generator(7, customers=("1001",), start=START)
    for a, b in zip(live.mix(20), simulated.mix(20), strict=True):
        assert a.header.message_id == b.header.message_id
        assert a.header.sent_at == datetime(2027, 1, 5, 12, 0, tzinfo=STOCKHOLM) != b.header.sent_at


@settings(max_examples=at_most(20), deadline=None)
@given(seed=seeds)
def test_identifiers_are_synthetic_and_headers_as_the_contract_says(seed: int) -> None:
    g = generator(seed)
    for message in every_kind(g):
        header = message.header
        assert uuid.UUID(header.message_id).version == 4
        assert header.sent_at.tzinfo is not None and header.sent_at.microsecond == 0
        assert header.sent_at.utcoffset() == header.sent_at.astimezone(STOCKHOLM).utcoffset()
        if not isinstance(message, m.BufferStockReport):  # a stock report is correlated by its store
            assert header.correlation_id == routing.reference(message)
        patient = getattr(message, "patient", None)
        if patient is not None:
            serial = int(patient.patient_id[8:11])
            assert 980 <= serial <= 999, "Skatteverket's test range only"
            assert identifiers.check(IdKind.PATIENT, patient.patient_id) == patient.patient_id


def test_times_keep_their_order_and_avoid_the_repeated_hour() -> None:
    g = Generator(4, start=datetime(2026, 10, 25, 1, 0, tzinfo=STOCKHOLM))
    times = [g.now() for _ in range(300)]
    assert times == sorted(times)
    assert times[-1] > datetime(2026, 10, 25, 3, 0, tzinfo=STOCKHOLM)
    for t in times:
        assert t.replace(fold=1 - t.fold).utcoffset() == t.utcoffset(), t
        wall = t.astimezone(UTC).astimezone(STOCKHOLM)
        assert t.replace(tzinfo=None) == wall.replace(tzinfo=None)  # a wall time that exists


def test_samordningsnummer_occur_and_pass_the_rules() -> None:
    g = generator(1)
    ids = {r.patient.patient_id for w in g.worlds.values() for r in w.residents}
    coordination = [i for i in ids if int(i[6:8]) > 60]
    assert coordination, "some patients have a samordningsnummer"
    for value in coordination:
        assert identifiers.patient_id_kind(value) is identifiers.PatientIdKind.SAMORDNINGSNUMMER


def test_synthetic_identifiers_pass_their_rules() -> None:
    rng = random.Random(3)
    for _ in range(200):
        org = synthetic.organisation_number(rng)
        identifiers.check(IdKind.ORGANISATION_NUMBER, org)
        identifiers.check(IdKind.HSA_ID, synthetic.hsa_id(org, "E12A"))


def test_order_variants_are_what_they_say() -> None:
    g = generator(5)
    home, urgent, unit, store = (g.customer_order(variant=v) for v in ("patient", "urgent", "unit", "buffer-store"))
    assert home.delivery.kind is AddressKind.PATIENT_RESIDENCE and home.patient is not None
    assert home.delivery.name == home.patient.name
    assert urgent.priority is Priority.URGENT and urgent.delivery.kind is AddressKind.PATIENT_RESIDENCE
    assert unit.delivery.kind is AddressKind.UNIT
    assert store.delivery.kind is AddressKind.BUFFER_STORE and store.patient is None
    assert store.delivery.buffer_store_id
    for order in (home, urgent, unit, store):
        numbers = [line.line_number for line in order.lines]
        assert numbers == list(range(1, len(numbers) + 1))
        assert len({line.article_number for line in order.lines}) == len(numbers)
        for line in order.lines:
            article = g.catalog.articles[line.article_number]
            assert article.status is ArticleStatus.ACTIVE
            assert (line.iso9999, line.article_type) == (article.iso9999, article.article_type)


def test_later_messages_refer_to_earlier_ones() -> None:
    g = generator(9)
    pickup = g.pickup_order("1001")
    receipt = g.return_receipt("1001")
    assert (receipt.pickup_id, receipt.patient, receipt.devices) == (pickup.pickup_id, pickup.patient, pickup.devices)
    assert receipt.header.correlation_id == pickup.pickup_id
    order = g.customer_order("1001")
    assert g.order_status_query("1001").order_id == order.order_id


def test_the_mix_is_mostly_orders_and_follows_weights() -> None:
    counts = Counter(type(x).__name__ for x in generator(2).mix(500))
    assert counts.most_common(1)[0][0] == "CustomerOrder"
    assert counts["CustomerOrder"] > 200
    assert set(counts) == set(INBOUND_NAMES)
    only = Counter(type(x).__name__ for x in generator(2).mix(50, {"WorkOrder": 1, "FaultReport": 0}))
    assert only == {"WorkOrder": 50}


@pytest.mark.parametrize(
    ("weights", "error"),
    [({"Invoice": 1}, "unknown: Invoice"), ({"CustomerOrder": -1}, "non-negative"), ({}, "not all zero")],
)
def test_bad_weights_are_refused_clearly(weights: dict[str, float], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        list(generator(1).mix(1, weights))


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="no generator for 'InvoiceData'"):
        generator(1).message("InvoiceData")
    with pytest.raises(identifiers.IdentifierError, match="customer-number"):
        Generator(1, customers=("12",))


def _business(message: m.Message) -> m.Message:
    """Without what a customer's version changes: SchemaVersion and the 1.1 elements."""
    blank: dict[str, Any] = {"header": dataclasses.replace(message.header, schema_version="1.0")}
    for attr in ("cost_centre", "infection_risk", "incident"):
        if hasattr(message, attr):
            blank[attr] = None
    if isinstance(prescriber := getattr(message, "prescriber", None), m.Prescriber):
        blank["prescriber"] = dataclasses.replace(prescriber, prescriber_code=None, profession=None)
    if isinstance(patient := getattr(message, "patient", None), m.Patient):
        blank["patient"] = dataclasses.replace(patient, home_municipality=None, registered_address=None)
    return dataclasses.replace(message, **blank)


def test_a_1_1_customer_s_system_writes_1_1_and_fills_in_its_elements() -> None:
    plain = list(Generator(21, customers=("1001", "1002"), start=START).mix(300))
    mixed = list(Generator(21, customers=("1001", "1002"), start=START, versions={"1001": "1.1"}).mix(300))
    # The same traffic: a 1.0 customer's messages unchanged, a 1.1 customer's the same but for its version's parts.
    assert [x for x in plain if x.header.customer_number == "1002"] == [
        x for x in mixed if x.header.customer_number == "1002"
    ]
    assert [_business(x) for x in plain] == [_business(x) for x in mixed]
    skane = [x for x in mixed if x.header.customer_number == "1001"]
    assert {x.header.schema_version for x in skane} == {"1.1"}
    prescribed = [x.prescriber for x in skane if isinstance(getattr(x, "prescriber", None), m.Prescriber)]  # type: ignore[attr-defined]
    assert prescribed and all(p.prescriber_code and p.profession for p in prescribed)
    patients = [p for x in skane if isinstance(p := getattr(x, "patient", None), m.Patient)]
    assert patients and all(p.home_municipality for p in patients)
    assert any(p.registered_address for p in patients)
    for message in skane:  # what a 1.1 system sends is valid 1.1, and reaches SESAM2 whole
        assert valid(CUSTOMER.render(message)).message == message
    assert all(x.header.schema_version == "1.0" for x in plain if not isinstance(x, m.OrderWithdrawal))
