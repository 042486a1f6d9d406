"""The pipeline and its reactions on the in-memory unit of work (tests/support/fakes.py): no database, milliseconds.

What each kind of message leaves behind (status, steps, order view, what is sent where) is checked here;
the same behaviour against SQLite and PostgreSQL is the store tests' (tests/store/test_pipeline.py,
test_buffer_stores.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from broker.config import Settings
from broker.contract.dialect import DIALECTS, read
from broker.envelope import Delivery, Exchange
from broker.handlers import Context, default_registry
from broker.model import messages as m
from broker.model.codes import OrderStatus, Side
from broker.pipeline import Pipeline
from broker.store.error_rules import rule_of
from tests.support.buffer import SETTINGS as BUFFER_SETTINGS
from tests.support.buffer import STORE_CONFIG
from tests.support.deliveries import confirmation_of
from tests.support.fakes import FakeUnitOfWork

FIXTURES = Path(__file__).parents[1] / "fixtures"
CUSTOMER, SESAM2 = DIALECTS[Side.CUSTOMER], DIALECTS[Side.SESAM2]
STORE = STORE_CONFIG
# The buffer-store tests' customers: 1001 keeps a buffer store and has invoice permission, 1002 neither.
SETTINGS = BUFFER_SETTINGS


def fixture(name: str) -> m.Message:
    message = read((FIXTURES / name).read_bytes()).message
    assert message is not None, name
    return message


def from_customer(message: m.Message, **overrides: object) -> Delivery:
    h = message.header
    values: dict[str, object] = {
        "side": Side.CUSTOMER,
        "body": CUSTOMER.render(message),
        "routing_key": f"{h.customer_number}.{type(message).__name__}",
        "message_id": h.message_id,
    }
    return Delivery(**{**values, **overrides})  # type: ignore[arg-type]


def from_sesam2(message: m.Message) -> Delivery:
    return Delivery(Side.SESAM2, SESAM2.render(message), type(message).__name__, message.header.message_id)


def handle(uow: FakeUnitOfWork, *deliveries: Delivery, settings: Settings = SETTINGS) -> None:
    with uow:
        Pipeline(settings).handle(list(deliveries), uow)
        uow.commit()


ORDER = "customer/valid/CustomerOrder-patient-urgent.xml"


def test_a_customer_order_opens_its_order_and_goes_to_sesam2_translated() -> None:
    uow = FakeUnitOfWork()
    order = fixture(ORDER)
    assert isinstance(order, m.CustomerOrder)
    handle(uow, from_customer(order))
    (row,) = uow.stored
    assert row.status == "forwarded"
    assert uow.steps_of(row) == [("validate", "ok"), ("translate", "ok")]
    view = uow.orders.get("1002", order.order_id)
    assert view is not None and view.status == OrderStatus.SENT.value and set(view.lines) == {"1", "2", "3"}
    (out,) = uow.sent
    assert (out.exchange, out.routing_key, out.correlation_id) == (Exchange.SESAM2_OUT, "CustomerOrder", order.order_id)
    translated = read(out.body)
    assert translated.dialect is SESAM2 and isinstance(translated.message, m.CustomerOrder)
    assert translated.message.order_id == order.order_id
    assert order.prescriber is not None
    assert [(p.hsa_id, p.role) for p in uow.prescribers.seen if p.role == "prescriber"] == [
        (order.prescriber.hsa_id.upper(), "prescriber")
    ]


def test_an_answer_moves_the_order_and_a_status_query_reads_it() -> None:
    uow = FakeUnitOfWork()
    order = fixture(ORDER)
    assert isinstance(order, m.CustomerOrder)
    handle(uow, from_customer(order))
    handle(uow, from_sesam2(confirmation_of(order)))
    view = uow.orders.get("1002", order.order_id)
    assert view is not None and view.status == "confirmed" and view.sesam2_order_number == "4000012345"
    assert uow.sent[-1].routing_key == "1002.OrderConfirmation"
    query = m.OrderStatusQuery(
        header=dataclasses.replace(
            order.header, message_id="5d1c6a2e-1111-4abc-8def-000000000042", message_type="OrderStatusQuery"
        ),
        order_id=order.order_id,
    )
    handle(uow, from_customer(query, reply_to="amq.gen-reply"))
    reply_out = uow.sent[-1]
    assert (reply_out.exchange, reply_out.routing_key) == (Exchange.DIRECT, "amq.gen-reply")
    reply = read(reply_out.body).message
    assert isinstance(reply, m.OrderStatusReply) and reply.status is OrderStatus.CONFIRMED
    assert all(line.delivery_date == date(2026, 12, 1) for line in reply.lines)
    assert uow.stored[-1].status == "answered"


def test_an_answer_for_an_unknown_order_is_kept_and_reported() -> None:
    uow = FakeUnitOfWork()
    order = fixture(ORDER)
    assert isinstance(order, m.CustomerOrder)
    handle(uow, from_sesam2(confirmation_of(order)))
    (row,) = uow.stored
    assert ("correlate", "unknown-order") in uow.steps_of(row)
    assert row.status == "forwarded", "the customer still gets the answer"


def test_an_answer_for_a_customer_not_configured_is_parked_with_the_reason() -> None:
    uow = FakeUnitOfWork()
    order = fixture(ORDER)
    assert isinstance(order, m.CustomerOrder)
    handle(uow, from_sesam2(confirmation_of(order, customer="9999")))
    (row,) = uow.stored
    assert row.status == "parked" and "9999 is not configured" in (row.last_error or "")
    assert rule_of(row.last_error) == "route.unknown-customer"  # one Failures group, whatever the customer
    assert uow.sent == []


def test_invoice_data_goes_only_to_customers_with_invoice_permission() -> None:
    invoice = fixture("sesam2/valid/InvoiceData-2026-10.xml")
    assert isinstance(invoice, m.InvoiceData)
    allowed = FakeUnitOfWork()
    permitted = dataclasses.replace(invoice, header=dataclasses.replace(invoice.header, customer_number="1001"))
    handle(allowed, from_sesam2(permitted))
    assert [(o.exchange, o.routing_key) for o in allowed.sent] == [(Exchange.INVOICE, "1001")]
    assert [r["invoice_number"] for r in allowed.invoices.rows] == [invoice.invoice_number]
    refused = FakeUnitOfWork()
    other = dataclasses.replace(invoice, header=dataclasses.replace(invoice.header, customer_number="1002"))
    handle(refused, from_sesam2(other))
    (row,) = refused.stored
    assert row.status == "parked" and "no invoice permission" in (row.last_error or "")
    assert rule_of(row.last_error) == "route.no-invoice-permission"
    assert refused.sent == []


def test_the_article_register_is_broadcast_to_every_customer_system() -> None:
    uow = FakeUnitOfWork()
    handle(uow, from_sesam2(fixture("sesam2/valid/ArticleRegisterUpdate-new-and-withdrawn.xml")))
    assert sorted(o.routing_key for o in uow.sent) == ["1001.ArticleRegisterUpdate", "1002.ArticleRegisterUpdate"]
    assert len({o.message_id for o in uow.sent}) == 2, "each copy has an id of its own"


def test_a_redelivered_message_is_recorded_once_and_sends_nothing_again() -> None:
    uow = FakeUnitOfWork()
    delivery = from_customer(fixture(ORDER))
    handle(uow, delivery, delivery)
    handle(uow, delivery)
    (row,) = uow.stored
    assert len(uow.sent) == 1
    assert uow.steps_of(row).count(("dedupe", "duplicate")) == 1, "the redelivery of the second batch"


def test_a_withdrawal_under_the_safety_level_opens_one_replenishment() -> None:
    uow = FakeUnitOfWork()
    withdrawal = fixture("customer/valid/BufferWithdrawal-samordningsnummer.xml")
    assert isinstance(withdrawal, m.BufferWithdrawal)
    count = m.BufferStockReport(
        header=dataclasses.replace(
            withdrawal.header, message_id="5d1c6a2e-2222-4abc-8def-000000000001", message_type="BufferStockReport"
        ),
        buffer_store_id=STORE.store_id,
        counted_at=datetime(2026, 1, 1, tzinfo=UTC),
        items=[m.StockItem(article_number="120606", quantity_on_hand=2)],
    )
    handle(uow, from_customer(count), from_customer(withdrawal))
    stock = uow.buffer_stock.get(("1001", STORE.store_id, "120606"))
    assert stock is not None and stock.on_hand is not None and stock.on_hand < 2
    (opened,) = uow.buffer_stock.replenishments
    assert opened["quantity"] == 5 and opened["status"] == "open"
    replenishment = [
        o for o in uow.sent if o.exchange is Exchange.SESAM2_OUT and o.correlation_id == opened["order_id"]
    ]
    assert len(replenishment) == 1, "the replenishment goes to SESAM2 as an ordinary order"
    handle(uow, from_customer(withdrawal))
    assert len(uow.buffer_stock.replenishments) == 1, "a repeat moves nothing and opens nothing"


def test_a_new_reaction_is_one_registration_and_runs_after_the_others() -> None:
    seen: list[tuple[str, str]] = []
    registry = default_registry()

    @registry.on(m.CustomerOrder)
    def audit_orders(ctx: Context, message: m.CustomerOrder) -> None:
        seen.append((message.order_id, ctx.row.status))

    uow = FakeUnitOfWork()
    order = fixture(ORDER)
    with uow:
        Pipeline(SETTINGS, registry=registry).handle([from_customer(order)], uow)
        uow.commit()
    assert seen == [(order.order_id, "forwarded")], "registered last, it sees the message forwarded"


def test_a_retry_under_a_new_id_is_a_repeat_and_other_content_is_refused() -> None:
    uow = FakeUnitOfWork()
    order = fixture(ORDER)
    assert isinstance(order, m.CustomerOrder)
    retry = dataclasses.replace(order, header=dataclasses.replace(order.header, message_id=str(uuid.uuid4())))
    changed = dataclasses.replace(
        retry, header=dataclasses.replace(retry.header, message_id=str(uuid.uuid4())), note="Another note"
    )
    handle(uow, from_customer(order))
    handle(uow, from_customer(retry), from_customer(changed))
    assert [r.status for r in uow.stored] == ["forwarded", "repeat", "rejected"]
    assert [o.message_type for o in uow.sent] == ["CustomerOrder", "Rejection"]
    assert "order.duplicate" in (uow.stored[2].last_error or "") and order.header.message_id in (
        uow.stored[2].last_error or ""
    )


def test_a_confirmed_pickup_answers_a_status_query_with_its_pickup_date() -> None:
    """The seed's "search pickup with pickup date": confirmed, and when (each device line's date)."""
    uow = FakeUnitOfWork()
    pickup = fixture("customer/valid/PickupOrder-two-devices.xml")
    assert isinstance(pickup, m.PickupOrder)
    handle(uow, from_customer(pickup))
    header = dataclasses.replace(
        pickup.header, message_id=str(uuid.uuid4()), message_type="PickupConfirmation", sender_system="SESAM2"
    )
    confirmation = m.PickupConfirmation(
        header=header, pickup_id=pickup.pickup_id, sesam2_order_number="4000054321", pickup_date=date(2026, 12, 9)
    )
    handle(uow, from_sesam2(confirmation))
    query = m.OrderStatusQuery(
        header=dataclasses.replace(pickup.header, message_id=str(uuid.uuid4()), message_type="OrderStatusQuery"),
        order_id=pickup.pickup_id,
    )
    handle(uow, from_customer(query))
    reply = read(uow.sent[-1].body).message
    assert isinstance(reply, m.OrderStatusReply) and reply.status is OrderStatus.CONFIRMED
    assert [line.delivery_date for line in reply.lines] == [date(2026, 12, 9)] * len(pickup.devices)
    # The broker's own answer: its name and time, not the query's.
    assert reply.header.sender_system == "HMC-Broker" and reply.header.sent_at > query.header.sent_at
