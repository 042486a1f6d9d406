"""Version 1.1 of the customer dialect beside 1.0 (#17): 1.1 only adds optional elements, so the broker reads
both; each customer gets what it receives in the version it is configured with (SchemaVersion and elements),
valid against that version's XSD (schemas/customer/v1/customer-1.0.xsd for 1.0)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from broker.config import ConfigurationError, Customer, Settings, parse_customers
from broker.contract import schema
from broker.contract.dialect import DIALECTS, read, schema_dir
from broker.contract.mapping import TYPE_MAPS
from broker.contract.spec import F, G, Spec
from broker.envelope import Exchange
from broker.model import messages as m
from broker.model.codes import Side
from broker.pipeline import Pipeline
from tests.support.deliveries import sesam2_delivery
from tests.support.fakes import FakeUnitOfWork
from tests.support.profiles import at_most
from tests.support.strategies import messages

CUSTOMER = DIALECTS[Side.CUSTOMER]
XSD_1_0 = schema.load(schema_dir() / "customer/v1/customer-1.0.xsd")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def added_in_1_1(specs: tuple[Spec, ...]) -> set[str]:
    """Element names the mapping table marks as added by 1.1."""
    out: set[str] = set()
    for spec in specs:
        if isinstance(spec, F):
            if spec.since == "1.1" and spec.customer:
                out.add(spec.customer.split("/")[-1])
        elif isinstance(spec, G) and spec.since == "1.1":
            out.add(spec.customer.split("/")[-1])  # the group's element (its children may be 1.0 names)
        else:
            out |= added_in_1_1(spec.fields)
    return out


NEW = {name for t in TYPE_MAPS.values() for name in added_in_1_1(t.fields)}
TYPES = sorted(CUSTOMER.binding.by_type, key=lambda t: t.__name__)


def test_1_1_adds_these_elements() -> None:
    assert {
        "ProtectedIdentity",
        "CostCentre",
        "InfectionRisk",
        "IndividualNumber",
        "RegisteredAddress",
        "HomeMunicipality",
        "PrescriberCode",
        "Profession",
        "RentalFrom",
        "RentalTo",
        "CreditsInvoice",
        "Incident",
        "RequestedBy",
    } == NEW


@pytest.mark.parametrize("cls", TYPES, ids=lambda t: t.__name__)
@settings(max_examples=at_most(10), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_version_writes_what_its_schema_accepts_and_the_broker_reads_both(cls: type, data: st.DataObject) -> None:
    message = data.draw(messages(cls))
    if cls not in CUSTOMER.binding_for("1.0").by_type:  # a type 1.1 added: a 1.0 customer never gets one
        assert TYPE_MAPS[cls].since == "1.1"
        assert read(CUSTOMER.render(message, "1.1")).ok
        return
    if isinstance(message, m.InvoiceData) and any(line.credits_invoice for line in message.lines):
        # A credit line (negative quantity) is 1.1's: a 1.0 customer is never sent one (the invoice is parked).
        assert read(CUSTOMER.render(message, "1.1")).ok
        return
    old = CUSTOMER.render(message, "1.0")
    root = etree.fromstring(old)
    assert schema.validate(XSD_1_0, root) == []  # a 1.0 customer's own schema accepts it
    assert root.findtext(f"{{{CUSTOMER.namespace}}}Header/{{{CUSTOMER.namespace}}}SchemaVersion") == "1.0"
    # (IndividualNumber is 1.0 elsewhere: on device lines and work orders; only the invoice line's is new.)
    assert not {etree.QName(el).localname for el in root.iter()} & (NEW - {"IndividualNumber"})
    new = CUSTOMER.render(message, "1.1")
    parsed_old, parsed_new = read(old), read(new)
    assert parsed_old.problems == [] and parsed_new.problems == []
    assert parsed_new.message is not None and parsed_new.message.header.schema_version == "1.1"
    # 1.1 keeps everything; 1.0 loses only what 1.1 added.
    assert dataclasses.replace(parsed_new.message, header=message.header) == message


def test_a_1_0_customer_and_a_1_1_customer_side_by_side() -> None:
    invoice = read((FIXTURES / "sesam2/valid/InvoiceData-2026-10.xml").read_bytes()).message
    assert isinstance(invoice, m.InvoiceData)
    line = dataclasses.replace(invoice.lines[0], individual_number="HS-2026-0042")
    invoice = dataclasses.replace(invoice, lines=[line, *invoice.lines[1:]])
    for version, has_serial in (("1.0", False), ("1.1", True)):
        config = Settings(customers=(Customer("1001", "Region Skåne", invoice=True, schema_version=version),))
        uow = FakeUnitOfWork()
        with uow:
            Pipeline(config).handle([sesam2_delivery(invoice)], uow)
            uow.commit()
        (out,) = [o for o in uow.sent if o.exchange is Exchange.INVOICE]
        assert out.schema_version == version
        assert (b"<IndividualNumber>HS-2026-0042</IndividualNumber>" in out.body) is has_serial
        assert f"<SchemaVersion>{version}</SchemaVersion>".encode() in out.body


def test_a_customer_s_version_is_configured_and_checked() -> None:
    (skane, halland) = parse_customers("1001:Skåne:websesam-skane:invoice:1.1,1002:Halland")
    assert (skane.schema_version, skane.invoice, halland.schema_version) == ("1.1", True, "1.0")
    with pytest.raises(ConfigurationError, match=r"schema_version '2\.0'"):
        Settings(customers=(Customer("1001", schema_version="2.0"),)).checked()


def test_a_1_1_answer_for_a_1_0_customer_is_parked_and_a_1_1_customer_gets_it() -> None:
    answer = read((FIXTURES / "sesam2/valid/OrthopaedicReferralAnswer-acute-appointment.xml").read_bytes()).message
    assert isinstance(answer, m.OrthopaedicReferralAnswer)
    customer = answer.header.customer_number or ""
    for version, status in (("1.0", "parked"), ("1.1", "forwarded")):
        uow = FakeUnitOfWork()
        with uow:
            Pipeline(Settings(customers=(Customer(customer, schema_version=version),))).handle(
                [sesam2_delivery(answer)], uow
            )
            uow.commit()
        (row,) = uow.stored
        assert row.status == status, row.last_error
        assert [o.message_type for o in uow.sent] == ([] if version == "1.0" else ["OrthopaedicReferralAnswer"])
