"""The pipeline on the store (SQLite and PostgreSQL): what each delivery leaves in the store and the outbox."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from sqlalchemy import select

from broker.config import Customer, Settings
from broker.contract.dialect import DIALECTS, read
from broker.envelope import Delivery, Exchange
from broker.model import messages as m
from broker.model.codes import Side
from broker.pipeline import Pipeline
from broker.store.tables import MessageRow, OrderRow, OutboxRow
from broker.store.unit_of_work import UnitOfWork
from tests.support.deliveries import confirmation_of
from tests.support.fixtures import Store, every_step

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
CUSTOMERS = (
    Customer("1001", "Region Skåne", "websesam-skane", invoice=True, schema_version="1.1"),  # 1.1 beside 1.0
    Customer("1002", "Region Halland", "websesam-halland"),
    Customer("2040", "Västerby kommun"),
)
SETTINGS = Settings(customers=CUSTOMERS)


@pytest.fixture
def factory(store: Store):  # type: ignore[no-untyped-def]
    return store.sessions


def delivery(path: Path, side: Side, **overrides: object) -> Delivery:
    body = path.read_bytes()
    message = read(body).message
    assert message is not None, path
    h = message.header
    values: dict[str, object] = {
        "side": side,
        "body": body,
        "routing_key": f"{h.customer_number}.{type(message).__name__}"
        if side is Side.CUSTOMER
        else type(message).__name__,
        "message_id": h.message_id,
        "correlation_id": h.correlation_id,
        "message_type": type(message).__name__,
    }
    values.update(overrides)
    return Delivery(**values)  # type: ignore[arg-type]


def run(factory, *deliveries: Delivery) -> None:  # type: ignore[no-untyped-def]
    with UnitOfWork(factory) as uow:
        Pipeline(SETTINGS).handle(list(deliveries), uow)
        uow.commit()


def steps_in(factory):  # type: ignore[no-untyped-def]
    with factory() as session:
        return every_step(session)


def rows(factory, table):  # type: ignore[no-untyped-def]
    with factory() as session:
        return list(session.scalars(select(table).order_by(table.id if hasattr(table, "id") else table.order_id)))


INBOUND = sorted(
    p for p in (FIXTURES / "customer/valid").glob("*.xml") if read(p.read_bytes()).message.direction.value == "inbound"
)
SESAM2 = sorted(
    p for p in (FIXTURES / "sesam2/valid").glob("*.xml") if read(p.read_bytes()).message.direction.value == "outbound"
)


@pytest.mark.parametrize(
    "path", [p for p in INBOUND if not p.name.startswith("OrderStatusQuery")], ids=lambda p: p.stem
)
def test_every_inbound_type_reaches_sesam2_translated(factory, path: Path) -> None:  # type: ignore[no-untyped-def]
    run(factory, delivery(path, Side.CUSTOMER))
    (message,) = rows(factory, MessageRow)
    assert message.status == "forwarded", message.last_error
    (out,) = rows(factory, OutboxRow)
    original = read(path.read_bytes()).message
    translated = read(out.body)
    assert translated.ok and translated.dialect is not None and translated.dialect.name.value == "sesam2"
    assert (out.exchange, out.routing_key) == (Exchange.SESAM2_OUT.value, type(original).__name__)
    assert translated.message is not None and original is not None
    assert translated.message.header.causation_id == original.header.message_id
    assert out.message_id == translated.message.header.message_id != original.header.message_id


@pytest.mark.parametrize("path", SESAM2, ids=lambda p: p.stem)
def test_every_sesam2_message_reaches_its_customer_and_no_other(factory, path: Path) -> None:  # type: ignore[no-untyped-def]
    run(factory, delivery(path, Side.SESAM2))
    (message,) = rows(factory, MessageRow)
    original = read(path.read_bytes()).message
    assert original is not None
    outbox = rows(factory, OutboxRow)
    customer = original.header.customer_number
    if isinstance(original, m.ArticleRegisterUpdate):
        assert sorted(o.routing_key for o in outbox) == [f"{c.number}.ArticleRegisterUpdate" for c in CUSTOMERS]
        assert len({o.message_id for o in outbox}) == len(CUSTOMERS)
    elif isinstance(original, m.InvoiceData) and not SETTINGS.customer(customer).invoice:  # type: ignore[union-attr]
        assert message.status == "parked" and "invoice permission" in (message.last_error or "")
        assert outbox == []
    elif isinstance(original, m.InvoiceData):
        ((exchange, key),) = [(o.exchange, o.routing_key) for o in outbox]
        assert (exchange, key) == (Exchange.INVOICE.value, customer)
    else:
        ((exchange, key),) = [(o.exchange, o.routing_key) for o in outbox]
        assert (exchange, key) == (Exchange.CUSTOMER_OUT.value, f"{customer}.{type(original).__name__}")
        assert read(outbox[0].body).ok


def test_duplicates_are_stored_once_and_sent_once(factory) -> None:  # type: ignore[no-untyped-def]
    order = delivery(FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml", Side.CUSTOMER)
    run(factory, order, order)
    run(factory, order)
    assert len(rows(factory, MessageRow)) == 1
    assert len(rows(factory, OutboxRow)) == 1
    assert [e.outcome for e in steps_in(factory) if e.stage == "dedupe"] == ["duplicate", "duplicate"]


def test_an_invalid_message_is_rejected_with_every_reason_and_others_flow_on(factory) -> None:  # type: ignore[no-untyped-def]
    good = delivery(FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml", Side.CUSTOMER)
    body = good.body.replace(b"<Quantity>1</Quantity>", b"<Quantity>0</Quantity>", 1)
    bad = Delivery(
        side=Side.CUSTOMER,
        body=body.replace(good.message_id.encode(), b"0b2c8f3e-0000-4000-8000-000000000001"),
        routing_key=good.routing_key,
    )
    run(factory, bad, good)
    statuses = {r.message_id: r.status for r in rows(factory, MessageRow)}
    assert statuses == {"0b2c8f3e-0000-4000-8000-000000000001": "rejected", good.message_id: "forwarded"}
    rejection = next(o for o in rows(factory, OutboxRow) if o.message_type == "Rejection")
    customer = good.routing_key.split(".")[0]
    assert (rejection.exchange, rejection.routing_key) == (Exchange.CUSTOMER_OUT.value, f"{customer}.Rejection")
    parsed = read(rejection.body)
    assert isinstance(parsed.message, m.Rejection)
    assert [p.rule for p in parsed.message.problems] == ["schema.range"]
    assert parsed.message.rejected_message_id == "0b2c8f3e-0000-4000-8000-000000000001"


def test_a_customer_system_may_send_only_for_its_own_customer_numbers(factory) -> None:  # type: ignore[no-untyped-def]
    path = FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml"
    honest = delivery(path, Side.CUSTOMER)
    customer = honest.routing_key.split(".")[0]
    owner = SETTINGS.customer(customer)
    assert owner is not None and owner.amqp_user, "fixture must belong to a customer with an AMQP user"
    forged = delivery(path, Side.CUSTOMER, user_id="someone-else")
    run(factory, forged)
    (row,) = rows(factory, MessageRow)
    assert row.status == "rejected" and "security.forged-customer" in (row.last_error or "")
    assert rows(factory, OutboxRow) == [], "an unknown sender gets nothing, and the victim nothing either"
    assert [e.outcome for e in steps_in(factory) if e.stage == "reject"] == ["unroutable"]


def _owner_and_other(path: Path) -> tuple[Delivery, Customer, Customer]:
    honest = delivery(path, Side.CUSTOMER)
    victim = SETTINGS.customer(honest.routing_key.split(".")[0])
    assert victim is not None and victim.amqp_user
    attacker = next(c for c in CUSTOMERS if c.amqp_user and c.number != victim.number)
    return honest, victim, attacker


@pytest.mark.parametrize("reply_to", [None, "hmc.customer.1002"])  # 1002: the victim's queue
def test_a_forged_customer_number_is_answered_to_the_real_sender_never_the_victim(factory, reply_to) -> None:  # type: ignore[no-untyped-def]
    path = FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml"
    honest, victim, attacker = _owner_and_other(path)
    forged = dataclasses.replace(honest, user_id=attacker.amqp_user, reply_to=reply_to)
    run(factory, forged)
    (row,) = rows(factory, MessageRow)
    assert row.status == "rejected" and "security.forged-customer" in (row.last_error or "")
    (out,) = rows(factory, OutboxRow)
    # reply_to is as untrusted as the header: a forger could name the victim's queue there.
    assert (out.exchange, out.routing_key) == (Exchange.CUSTOMER_OUT.value, f"{attacker.number}.Rejection")
    rejection = read(out.body).message
    assert isinstance(rejection, m.Rejection) and rejection.header.customer_number == attacker.number
    assert victim.number not in out.routing_key


def test_a_routing_key_for_another_customer_is_answered_to_the_routing_keys_owner(factory) -> None:  # type: ignore[no-untyped-def]
    path = FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml"
    honest, _victim, attacker = _owner_and_other(path)
    # RabbitMQ's topic permissions hold the attacker to its own routing keys; the header names the victim.
    mismatched = dataclasses.replace(honest, routing_key=f"{attacker.number}.CustomerOrder")
    run(factory, mismatched)
    (row,) = rows(factory, MessageRow)
    assert row.status == "rejected" and "security.customer-mismatch" in (row.last_error or "")
    (out,) = rows(factory, OutboxRow)
    assert out.routing_key == f"{attacker.number}.Rejection"


def test_an_invalid_document_naming_another_customer_is_answered_to_its_sender(factory) -> None:  # type: ignore[no-untyped-def]
    path = FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml"
    honest, _victim, attacker = _owner_and_other(path)
    body = honest.body.replace(b"<Priority>urgent</Priority>", b"<Priority>soon</Priority>")
    bad = dataclasses.replace(honest, body=body, routing_key=f"{attacker.number}.CustomerOrder")
    run(factory, bad)
    (out,) = rows(factory, OutboxRow)
    assert out.routing_key == f"{attacker.number}.Rejection", "not to the customer the document claims"


def test_answers_update_the_order_view_and_status_queries_read_it(factory) -> None:  # type: ignore[no-untyped-def]
    order = delivery(FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml", Side.CUSTOMER)
    run(factory, order)
    (view,) = rows(factory, OrderRow)
    assert view.status == "sent"
    placed = read(order.body).message
    assert isinstance(placed, m.CustomerOrder)
    confirmation = _confirmation_for(placed)
    run(factory, Delivery(side=Side.SESAM2, body=confirmation, routing_key="OrderConfirmation"))
    (view,) = rows(factory, OrderRow)
    assert view.status == "confirmed" and view.sesam2_order_number == "4000012345"
    query_header = dataclasses.replace(
        placed.header, message_id="5d1c6a2e-1111-4abc-8def-000000000042", message_type="OrderStatusQuery"
    )
    query = m.OrderStatusQuery(header=query_header, order_id=placed.order_id)
    body = DIALECTS[Side.CUSTOMER].render(query)
    run(
        factory,
        Delivery(
            side=Side.CUSTOMER,
            body=body,
            routing_key=f"{placed.header.customer_number}.OrderStatusQuery",
            reply_to="amq.gen-reply",
        ),
    )
    reply_row = next(o for o in rows(factory, OutboxRow) if o.message_type == "OrderStatusReply")
    assert (reply_row.exchange, reply_row.routing_key) == ("", "amq.gen-reply")
    reply = read(reply_row.body).message
    assert isinstance(reply, m.OrderStatusReply)
    assert reply.status.value == "confirmed" and reply.sesam2_order_number == "4000012345"
    assert {line.line_number for line in reply.lines} == {line.line_number for line in placed.lines}
    assert all(line.delivery_date is not None for line in reply.lines)


def _confirmation_for(order: m.CustomerOrder) -> bytes:
    return DIALECTS[Side.SESAM2].render(confirmation_of(order))


def test_an_answer_for_an_unknown_order_is_kept_reported_and_routed(factory) -> None:  # type: ignore[no-untyped-def]
    path = FIXTURES / "sesam2/valid/OrderConfirmation-two-lines.xml"
    run(factory, delivery(path, Side.SESAM2))
    (row,) = rows(factory, MessageRow)
    assert row.status == "forwarded"
    assert ("correlate", "unknown-order") in {(e.stage, e.outcome) for e in steps_in(factory)}
    assert len(rows(factory, OutboxRow)) == 1


def test_orders_for_unknown_or_withdrawn_articles_are_refused(factory) -> None:  # type: ignore[no-untyped-def]
    from adapters.catalog_file import DEMO_CATALOG, load_catalog

    catalog = load_catalog(DEMO_CATALOG)
    good = delivery(FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml", Side.CUSTOMER)
    first_article = read(good.body).message.lines[0].article_number  # type: ignore[union-attr]
    unknown = dataclasses.replace(
        good,
        body=good.body.replace(first_article.encode(), b"999999", 1).replace(
            good.message_id.encode(), b"6a0c7d9e-1111-4c2b-8d3e-000000000001"
        ),
        message_id=None,
    )
    withdrawn = dataclasses.replace(
        good,
        body=good.body.replace(first_article.encode(), b"120606-OLD", 1).replace(
            good.message_id.encode(), b"6a0c7d9e-1111-4c2b-8d3e-000000000002"
        ),
        message_id=None,
    )
    with UnitOfWork(factory) as uow:
        Pipeline(SETTINGS, catalog).handle([good, unknown, withdrawn], uow)
        uow.commit()
    by_id = {r.message_id: r for r in rows(factory, MessageRow)}
    assert by_id[good.message_id].status == "forwarded"
    assert "catalog.unknown-article at /CustomerOrder/Lines/Line[1]/ArticleNumber" in (
        by_id["6a0c7d9e-1111-4c2b-8d3e-000000000001"].last_error or ""
    )
    assert "catalog.withdrawn-article" in (by_id["6a0c7d9e-1111-4c2b-8d3e-000000000002"].last_error or "")


def test_a_bad_catalog_row_is_refused_with_its_row_number(tmp_path: Path) -> None:
    from adapters.catalog_file import DEMO_CATALOG, CatalogError, load_catalog

    lines = DEMO_CATALOG.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("7350000001013", "7350000001014")  # a wrong GS1 check digit
    bad = tmp_path / "catalog.csv"
    bad.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"row 4: gln\.check-digit"):
        load_catalog(bad)


def test_an_oversized_payload_is_refused_and_kept_only_in_part(factory) -> None:  # type: ignore[no-untyped-def]
    good = delivery(FIXTURES / "customer/valid/CustomerOrder-patient-urgent.xml", Side.CUSTOMER)
    limit = 200_000
    body = good.body.replace(b"</CustomerOrder>", b"<!--" + b"x" * limit + b"--></CustomerOrder>")
    run_with = Pipeline(dataclasses.replace(SETTINGS, max_message_bytes=limit))
    with UnitOfWork(factory) as uow:
        run_with.handle([dataclasses.replace(good, body=body)], uow)
        uow.commit()
    (row,) = rows(factory, MessageRow)
    assert row.status == "rejected" and (row.last_error or "").startswith("xml.too-large")
    assert row.payload == body[: len(row.payload or b"")] and len(row.payload or b"") == 64 * 1024
    kept = row.properties["payload_truncated"]
    assert kept["bytes"] == len(body) and len(kept["sha256"]) == 64
    (out,) = rows(factory, OutboxRow)
    assert out.message_type == "Rejection" and out.routing_key == "1002.Rejection"
