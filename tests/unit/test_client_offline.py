"""The Python client (clients/python) reads the contract from the AsyncAPI document: it knows every message
type of both dialects, validates as the broker does, and parses answers and Rejections into typed objects."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hmc_client import (
    Contract,
    HmcClient,
    InvalidMessage,
    OrderConfirmation,
    OrderStatusReply,
    RecentIds,
    Rejection,
    Role,
    parse,
)
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from adapters.contract import bundle
from broker.contract.dialect import DIALECTS, read
from broker.envelope import SCHEMA_VERSION_HEADER

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VALID = sorted(FIXTURES.glob("*/valid/*.xml"))
CONTRACT = Contract.load()


def test_the_client_knows_every_message_type_and_version_of_the_contract() -> None:
    for side, dialect in DIALECTS.items():
        for cls in dialect.binding.by_type:
            spec = CONTRACT.spec(side.value, cls.__name__)
            assert spec.element == dialect.binding.by_type[cls].names[0]
            assert list(spec.schemas) == list(dialect.versions)
    assert CONTRACT.address("customerSystemPublishes") == "hmc.customer.in"
    assert CONTRACT.address("sesam2Consumes") == "sesam2.in"


@pytest.mark.parametrize("path", VALID, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_valid_fixture_is_read_with_the_header_the_broker_reads(path: Path) -> None:
    body = path.read_bytes()
    answer = parse(CONTRACT, body)
    message = read(body).message
    assert message is not None
    assert answer.message_id == message.header.message_id
    assert answer.type == type(message).__name__
    assert answer.document.schema_version == message.header.schema_version


def test_answers_come_back_typed() -> None:
    confirmation = parse(CONTRACT, (FIXTURES / "customer/valid/OrderConfirmation-two-lines.xml").read_bytes())
    assert isinstance(confirmation, OrderConfirmation)
    assert [line.line_number for line in confirmation.lines] == [1, 2]
    reply = parse(CONTRACT, (FIXTURES / "customer/valid/OrderStatusReply-partly-delivered.xml").read_bytes())
    assert isinstance(reply, OrderStatusReply) and reply.lines
    rejection = parse(CONTRACT, (FIXTURES / "customer/valid/Rejection-schema-errors.xml").read_bytes())
    assert isinstance(rejection, Rejection)
    assert rejection.rejected_type == "CustomerOrder"
    assert [p.rule for p in rejection.problems][:2] == ["schema.code-list", "schema.pattern"]
    assert rejection.problems[0].path == "/CustomerOrder/Priority" and rejection.problems[0].line == 14


CUSTOMER_VALID = [p for p in VALID if p.parent.parent.name == "customer"]


@given(st.sampled_from(CUSTOMER_VALID), st.data())
def test_client_and_broker_agree_on_a_document_with_an_element_removed(path: Path, data: st.DataObject) -> None:
    root = etree.fromstring(path.read_bytes())
    elements = [e for e in root.iter() if e is not root and e.getparent() is not None]
    victim = data.draw(st.sampled_from(elements))
    broken = copy.deepcopy(root)
    target = broken.xpath(root.getroottree().getpath(victim))[0]
    target.getparent().remove(target)
    body = etree.tostring(broken, xml_declaration=True, encoding="UTF-8")
    broker_problems = read(body).problems
    schema_refused = any(p.rule.startswith(("schema", "xml", "header")) for p in broker_problems)
    customer = root.findtext("{*}Header/{*}CustomerNumber")
    client = HmcClient("amqp://127.0.0.1:1/", Role.customer(customer or ""))  # validates, never connects
    try:
        client.validate(body)
        client_refused = False
    except InvalidMessage as e:
        client_refused = True
        assert e.problems and all(str(p) for p in e.problems)
    assert client_refused == schema_refused, (victim.tag, broker_problems)


def test_publish_refuses_before_sending_what_the_broker_would_reject() -> None:
    order = (FIXTURES / "customer/valid/CustomerOrder-unit-minimal.xml").read_bytes()  # customer 2040
    client = HmcClient("amqp://nobody:secret@127.0.0.1:1/", Role.customer("1001"))  # never connects
    with pytest.raises(InvalidMessage, match=r"security\.customer-mismatch"):
        client.publish(order)
    with pytest.raises(InvalidMessage, match=r"client\.dialect"):
        HmcClient("amqp://127.0.0.1:1/", Role.sesam2()).validate(order)
    with pytest.raises(InvalidMessage, match=r"header\.schema-version"):
        client.validate(order.replace(b"<SchemaVersion>1.0<", b"<SchemaVersion>0.9<"))
    with pytest.raises(InvalidMessage, match=r"xml\.syntax"):
        client.validate(b"<CustomerOrder")
    assert client.user_id == "nobody" and SCHEMA_VERSION_HEADER == "x-schema-version"


def test_recent_ids_forget_the_oldest_beyond_capacity() -> None:
    seen = RecentIds(capacity=2)
    for message_id in ("a", "b", "a", "c"):
        seen.add(message_id)
    assert "a" in seen and "c" in seen and "b" not in seen


def test_the_client_reads_a_downloaded_bundle(tmp_path: Path) -> None:
    bundle.write(tmp_path / "contract")
    downloaded = Contract.load(tmp_path / "contract")
    assert downloaded.schema_versions == CONTRACT.schema_versions
    order = (FIXTURES / "customer/valid/CustomerOrder-unit-minimal.xml").read_bytes()
    assert downloaded.read(order).message_id == CONTRACT.read(order).message_id
