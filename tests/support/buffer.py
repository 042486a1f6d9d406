"""Messages about one buffer store, and running them through the pipeline, for the buffer-store tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from broker.config import BufferArticle, BufferStore, Customer, Settings
from broker.contract.dialect import read
from broker.envelope import Delivery
from broker.model import messages as m
from broker.pipeline import Pipeline
from broker.store.tables import BufferStockRow, OutboxRow, ReplenishmentRow
from broker.store.unit_of_work import UnitOfWork
from tests.support.deliveries import customer_delivery, sesam2_delivery

STORE = "BUF-1001-07"
KEPT = "120606"  # safety level 2, refill 5
OTHER = "093303"  # safety level 1, refill 3
UNKEPT = "091203"
STORE_CONFIG = BufferStore(
    store_id=STORE,
    name="Buffertförråd Vårdcentralen Norr",
    street="Storgatan 1",
    postal_code="75320",
    city="Uppsala",
    orderer_hsa_id="SE2321000016-P4Q8",
    orderer_name="Anna Lindqvist",
    unit_hsa_id="SE2321000016-7HK2",
    articles=(BufferArticle(KEPT, 2, 5), BufferArticle(OTHER, 1, 3, "accessory")),
)
SETTINGS = Settings(
    customers=(
        Customer("1001", "Region Skåne", "websesam-skane", invoice=True, buffer_stores=(STORE_CONFIG,)),
        Customer("1002", "Region Halland"),
    ),
    wire_tap=False,
)
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
PRESCRIBER = m.Prescriber(hsa_id="SE2321000016-P4Q8", name="Anna Lindqvist")


def header(message_type: str, *, customer: str = "1001", correlation: str | None = None) -> m.Header:
    return m.Header(
        message_id=str(uuid.uuid4()),
        message_type=message_type,
        sent_at=T0,
        sender_system="webSesam",
        customer_number=customer,
        unit_hsa_id="SE2321000016-7HK2",
        correlation_id=correlation,
    )


def stock_report(levels: dict[str, int], *, at: datetime = T0, store: str = STORE) -> Delivery:
    report = m.BufferStockReport(
        header=header("BufferStockReport"),
        buffer_store_id=store,
        counted_at=at,
        items=[m.StockItem(article_number=a, quantity_on_hand=q) for a, q in levels.items()],
    )
    return customer_delivery(report)


def withdrawal(article: str = KEPT, quantity: int = 1, *, at: datetime | None = None, store: str = STORE) -> Delivery:
    ref = f"UT-{uuid.uuid4().hex[:12]}"
    message = m.BufferWithdrawal(
        header=header("BufferWithdrawal", correlation=ref),
        withdrawal_id=ref,
        buffer_store_id=store,
        withdrawn_at=at or T0 + timedelta(hours=1),
        prescriber=PRESCRIBER,
        patient=m.Patient(patient_id="197808739945", name="Tomasz Nowak"),
        lines=[m.DeviceLine(line_number=1, article_number=article, quantity=quantity)],
    )
    return customer_delivery(message)


def delivery_note(order_id: str, article: str, quantity: int, *, at: datetime | None = None) -> Delivery:
    note = m.DeliveryNote(
        header=replace_sender(header("DeliveryNote", correlation=order_id)),
        order_id=order_id,
        sesam2_order_number="4500012345",
        buffer_store_id=STORE,
        shipped_at=at or T0 + timedelta(days=1),
        lines=[m.DeviceLine(line_number=1, article_number=article, quantity=quantity)],
    )
    return sesam2_delivery(note)


def order_cancelled(order_id: str) -> Delivery:
    from broker.model.codes import CancellationReason

    cancelled = m.OrderCancelled(
        header=replace_sender(header("OrderCancelled", correlation=order_id)),
        order_id=order_id,
        sesam2_order_number="4500012345",
        reason=CancellationReason.NOT_DELIVERABLE,
    )
    return sesam2_delivery(cancelled)


def replace_sender(h: m.Header) -> m.Header:
    from dataclasses import replace

    return replace(h, sender_system="SESAM2", unit_hsa_id=None)


def run(factory: sessionmaker[Session], *deliveries: Delivery, settings: Settings = SETTINGS) -> None:
    with UnitOfWork(factory) as uow:
        Pipeline(settings).handle(list(deliveries), uow)
        uow.commit()


def stock(factory: sessionmaker[Session], article: str = KEPT) -> int | None:
    with factory() as session:
        row = session.get(BufferStockRow, ("1001", STORE, article))
        return row.on_hand if row else None


def replenishments(factory: sessionmaker[Session]) -> list[ReplenishmentRow]:
    with factory() as session:
        return list(session.scalars(select(ReplenishmentRow).order_by(ReplenishmentRow.id)))


def replenishment_orders(factory: sessionmaker[Session]) -> list[m.CustomerOrder]:
    """The replenishment orders in the outbox for SESAM2, parsed back from what would go on the wire."""
    with factory() as session:
        rows = session.scalars(
            select(OutboxRow).where(OutboxRow.exchange == "sesam2.out", OutboxRow.message_type == "CustomerOrder")
        )
        orders = [read(r.body).message for r in rows]
    return [o for o in orders if isinstance(o, m.CustomerOrder) and o.order_id.startswith("PF-")]
