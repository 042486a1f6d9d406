"""Buffer stores (buffertförråd): stock per article, and automatic replenishment when it under-runs.

A customer's buffer store keeps articles configured with a safety level and a refill quantity
(Customer.buffer_stores). Three messages move its stock, each applied in the batch's transaction:

- BufferStockReport sets the counted level (withdrawals and deliveries dated after the count are
  applied on top, so a report that arrives late does not undo them);
- BufferWithdrawal lowers it (the withdrawal itself is forwarded to SESAM2 as BUFUTTAG, untouched);
- DeliveryNote raises it by what was delivered, and closes the replenishment it answers.

Whenever a stock change leaves an article under its safety level and no replenishment is open for it,
the broker opens one: a CustomerOrder to SESAM2, delivered to the store, for the refill quantity. It is
also an order in the order view, so SESAM2's OrderConfirmation and DeliveryNote correlate to it.

Exactly one per under-run, with competing workers and redeliveries, is the database's job:
- lock(): the batch locks the stock rows it will change, in key order, before anything else (SELECT
  ... FOR UPDATE on PostgreSQL; SQLite has one writer anyway). A second worker's batch for the same
  article waits, then sees the committed stock and the open replenishment. Key order means two
  batches never wait for each other in a circle.
- the partial unique index ux_replenishments_open refuses a second open replenishment outright;
- the ledger (buffer_movements) is unique per message and article: a redelivered, retried or replayed
  message moves stock once;
- the order's ids derive from the message that caused it: a retry of the batch sends the same ids.

Articles a store does not keep under replenishment, and stores not configured for a customer that
keeps others, are still forwarded (a withdrawal is the patient's device) and leave a warning event on
the message. A customer with no buffer stores configured does not use automatic replenishment.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from broker.config import BufferArticle, BufferStore, Customer, Settings
from broker.contract import identifiers
from broker.envelope import Exchange
from broker.handlers.registry import Context, Registry
from broker.model import messages as m
from broker.model import order_state
from broker.model.codes import AddressKind, ArticleType, OrderStatus, Priority
from broker.model.types import IdKind
from broker.store.tables import BufferStockRow
from broker.store.unit_of_work import NewMessage, UnitOfWork, now
from broker.translation import BROKER_SYSTEM, derived_id

Key = tuple[str, str, str]  # customer number, buffer store id, article number
STAGE = "buffer"
REPLENISHMENT = "Replenishment"  # the order view's kind of a generated order
_ORDER_IDS = uuid.UUID("3a8f1c2e-6d4b-4e59-9b7a-0c5d2e8f1a63")


# ---------------------------------------------------------------- the batch: lock first


def keys(settings: Settings, messages: Iterable[m.Message | None]) -> list[Key]:
    """The configured stock rows these messages change, in key order."""
    found: set[Key] = set()
    for message in messages:
        store_id, articles = _touches(message)
        customer = settings.customer(message.header.customer_number) if message else None
        store = customer.buffer_store(store_id) if customer and store_id else None
        if customer and store:
            found |= {(customer.number, store.store_id, a) for a in articles if store.article(a)}
    return sorted(found)


def register(registry: Registry) -> None:
    registry.before_batch(lock, first=True)  # before the order view reads: see the module doc
    registry.on(m.BufferStockReport, m.BufferWithdrawal, m.DeliveryNote, m.OrderCancelled)(react)


def react(ctx: Context, message: m.Message) -> None:
    """Move the stock; a replenishment it opens goes to SESAM2 as an ordinary CustomerOrder."""
    for order in apply(ctx.settings, message, ctx.row, ctx.uow):
        ctx.send(order, Exchange.SESAM2_OUT, "CustomerOrder")


def lock(messages: Iterable[m.Message | None], uow: UnitOfWork, settings: Settings) -> None:
    """Make and lock the batch's stock rows before any other work, in key order (see the module doc)."""
    wanted = keys(settings, messages)
    if not wanted:
        return
    stamp = now()
    rows = []
    for customer, store_id, article in wanted:
        configured = _configured(settings, customer, store_id, article)
        assert configured is not None  # keys() keeps only configured articles
        rows.append(
            {
                "customer_number": customer,
                "buffer_store_id": store_id,
                "article_number": article,
                "safety_level": configured.safety_level,
                "refill_quantity": configured.refill_quantity,
                "on_hand": None,
                "counted_at": None,
                "updated_at": stamp,
            }
        )
    for row in uow.buffer_stock.lock(rows, wanted):
        configured = _configured(settings, row.customer_number, row.buffer_store_id, row.article_number)
        if configured is not None:  # the configuration may have changed since the row was made
            row.safety_level, row.refill_quantity = configured.safety_level, configured.refill_quantity


# ---------------------------------------------------------------- one message


def apply(settings: Settings, message: m.Message, row: NewMessage, uow: UnitOfWork) -> list[m.CustomerOrder]:
    """Apply a message's effect on buffer stock; the replenishment orders it opens, to send to SESAM2."""
    if isinstance(message, m.OrderCancelled):
        _cancelled(message, row, uow)
        return []
    store_id, articles = _touches(message)
    if store_id is None:
        return []
    customer = settings.customer(message.header.customer_number)
    store = customer.buffer_store(store_id) if customer else None
    if customer is None or store is None:
        # A customer that keeps no store under replenishment does not use the feature: nothing to warn about.
        if customer and customer.buffer_stores and isinstance(message, m.BufferWithdrawal | m.BufferStockReport):
            uow.event(row, STAGE, "warning", f"buffer store {store_id} is not configured: stock not kept")
        return []
    unkept = sorted({a for a in articles if store.article(a) is None})
    if unkept and not isinstance(message, m.DeliveryNote):
        uow.event(row, STAGE, "warning", f"not kept in {store_id} under replenishment: {', '.join(unkept)}")
    if isinstance(message, m.BufferStockReport):
        changed = _count(message, store, row, uow)
    elif isinstance(message, m.BufferWithdrawal):
        changed = _withdraw(message, store, row, uow)
    elif isinstance(message, m.DeliveryNote):
        changed = _delivered(message, store, row, uow)
    else:
        return []
    return [order for stock in changed if (order := _replenish(customer, store, stock, message, row, uow))]


def _count(message: m.BufferStockReport, store: BufferStore, row: NewMessage, uow: UnitOfWork) -> list[BufferStockRow]:
    changed = []
    at = message.counted_at.astimezone(UTC)
    for item in message.items:
        stock = _stock(uow, message, store, item.article_number)
        if stock is None or _applied(uow, "count", message, item.article_number):
            continue
        if stock.counted_at is not None and _utc(stock.counted_at) >= at:
            uow.event(row, STAGE, "warning", f"{item.article_number}: counted before the last count; not applied")
            continue
        # Withdrawals and deliveries dated after this count are already in stock; they stay.
        since = uow.buffer_stock.moved_since(stock, at)
        stock.on_hand = item.quantity_on_hand + since
        stock.counted_at = at
        _moved(uow, stock, "count", item.quantity_on_hand, message, at)
        changed.append(stock)
    if changed:
        levels = ", ".join(f"{s.article_number}={s.on_hand}" for s in changed)
        uow.event(row, STAGE, "ok", f"stock of {store.store_id} counted: {levels}")
    return changed


def _withdraw(
    message: m.BufferWithdrawal, store: BufferStore, row: NewMessage, uow: UnitOfWork
) -> list[BufferStockRow]:
    return _change(uow, message, store, row, "withdrawal", _totals(message.lines), -1, message.withdrawn_at)


def _delivered(message: m.DeliveryNote, store: BufferStore, row: NewMessage, uow: UnitOfWork) -> list[BufferStockRow]:
    changed = _change(uow, message, store, row, "delivery", _totals(message.lines), +1, message.shipped_at)
    customer = message.header.customer_number or ""
    closed = uow.buffer_stock.close_replenishments(customer, message.order_id, "delivered", message.header.message_id)
    for article in closed:
        uow.event(row, STAGE, "ok", f"replenishment {message.order_id} of {article} delivered and closed")
    return changed


def _cancelled(message: m.OrderCancelled, row: NewMessage, uow: UnitOfWork) -> None:
    """SESAM2 cancelled a whole replenishment order: close it; the next under-run opens a new one.

    Not re-ordered at once: an article SESAM2 cannot deliver would be ordered and cancelled in a loop.
    """
    if message.line_number not in (None, 1):  # a replenishment has one line
        return
    customer = message.header.customer_number or ""
    closed = uow.buffer_stock.close_replenishments(customer, message.order_id, "cancelled", message.header.message_id)
    for article in closed:
        uow.event(row, STAGE, "warning", f"replenishment {message.order_id} of {article} cancelled by SESAM2")


def _change(
    uow: UnitOfWork,
    message: m.Message,
    store: BufferStore,
    row: NewMessage,
    kind: str,
    totals: dict[str, int],
    sign: int,
    when: datetime,
) -> list[BufferStockRow]:
    changed, notes = [], []
    at = when.astimezone(UTC)
    for article, quantity in sorted(totals.items()):
        stock = _stock(uow, message, store, article)
        if stock is None or _applied(uow, kind, message, article):
            continue
        if stock.on_hand is not None:
            stock.on_hand += sign * quantity
        _moved(uow, stock, kind, sign * quantity, message, at)
        changed.append(stock)
        notes.append(
            f"{article} {sign * quantity:+d} -> {'not counted yet' if stock.on_hand is None else stock.on_hand}"
        )
        if stock.on_hand is not None and stock.on_hand < 0:
            uow.event(row, STAGE, "warning", f"{article}: stock below zero; the next BufferStockReport corrects it")
    if notes:
        uow.event(row, STAGE, "ok", f"{kind} in {store.store_id}: {'; '.join(notes)}")
    return changed


def _replenish(
    customer: Customer,
    store: BufferStore,
    stock: BufferStockRow,
    cause: m.Message,
    row: NewMessage,
    uow: UnitOfWork,
) -> m.CustomerOrder | None:
    """Open a replenishment when `stock` is under its safety level and none is open (the row is locked)."""
    if stock.on_hand is None or stock.on_hand >= stock.safety_level:
        return None
    if uow.buffer_stock.replenishment_open(stock):
        return None
    article = store.article(stock.article_number)
    assert article is not None
    order = replenishment_order(customer.number, store, article, stock.on_hand, cause.header.message_id)
    uow.buffer_stock.open_replenishment(
        customer_number=stock.customer_number,
        buffer_store_id=stock.buffer_store_id,
        article_number=stock.article_number,
        order_id=order.order_id,
        message_id=order.header.message_id,
        quantity=article.refill_quantity,
        on_hand_at_order=stock.on_hand,
        safety_level=stock.safety_level,
        caused_by=cause.header.message_id,
    )
    if uow.orders.get(customer.number, order.order_id) is None:
        uow.orders.add(
            customer_number=customer.number,
            order_id=order.order_id,
            kind=REPLENISHMENT,
            status=OrderStatus.SENT.value,
            lines=order_state.opening_lines(order),
            opened_by=order.header.message_id,
        )
    uow.event(
        row,
        STAGE,
        "replenish",
        f"{stock.article_number} in {store.store_id}: {stock.on_hand} under safety level {stock.safety_level};"
        f" order {order.order_id} of {article.refill_quantity} to SESAM2",
    )
    return order


def replenishment_order(
    customer: str, store: BufferStore, article: BufferArticle, on_hand: int, cause_id: str
) -> m.CustomerOrder:
    """The order SESAM2 gets: an ordinary order to the store's address, from its responsible orderer.

    Its order id and message id derive from the message that caused it, the store and the article:
    a retried batch or a replay makes the same ids, and SESAM2 de-duplicates on them.
    """
    basis = f"{cause_id}/{store.store_id}/{article.article_number}"
    order_id = "PF-" + uuid.uuid5(_ORDER_IDS, basis).hex[:20].upper()  # påfyllning
    person = m.Person(hsa_id=store.orderer_hsa_id, name=store.orderer_name)
    prescriber = m.Prescriber(hsa_id=store.orderer_hsa_id, name=store.orderer_name)
    return m.CustomerOrder(
        header=m.Header(
            message_id=derived_id(basis, "replenishment"),
            message_type="CustomerOrder",
            sent_at=datetime.now(UTC).replace(microsecond=0),
            sender_system=BROKER_SYSTEM,
            customer_number=customer,
            unit_hsa_id=store.unit_hsa_id,
            correlation_id=order_id,
            causation_id=cause_id if _is_message_id(cause_id) else None,
        ),
        order_id=order_id,
        priority=Priority.NORMAL,
        prescriber=prescriber,
        orderer=person,
        delivery=m.Address(
            kind=AddressKind.BUFFER_STORE,
            name=store.name[:100],
            street=store.street[:200],
            postal_code=store.postal_code[:10],
            city=store.city[:100],
            buffer_store_id=store.store_id,
        ),
        lines=[
            m.OrderLine(
                line_number=1,
                article_number=article.article_number,
                quantity=article.refill_quantity,
                article_type=ArticleType(article.article_type),
            )
        ],
        note=f"Automatisk påfyllning av buffertförråd {store.store_id}: saldo {on_hand},"
        f" säkerhetsnivå {article.safety_level}",
    )


# ---------------------------------------------------------------- helpers


def _touches(message: m.Message | None) -> tuple[str | None, list[str]]:
    """The buffer store a message is about and the articles it names (None: not about a store)."""
    if isinstance(message, m.BufferStockReport):
        return message.buffer_store_id, [i.article_number for i in message.items]
    if isinstance(message, m.BufferWithdrawal | m.DeliveryNote):
        return message.buffer_store_id, [line.article_number for line in message.lines]
    return None, []


def _configured(settings: Settings, customer: str, store_id: str, article: str) -> BufferArticle | None:
    configured = settings.customer(customer)
    store = configured.buffer_store(store_id) if configured else None
    return store.article(article) if store else None


def _stock(uow: UnitOfWork, message: m.Message, store: BufferStore, article: str) -> BufferStockRow | None:
    """The stock row lock() made and locked for this batch (None: the store does not keep the article)."""
    if store.article(article) is None:
        return None
    return uow.buffer_stock.get((message.header.customer_number or "", store.store_id, article))


def _applied(uow: UnitOfWork, kind: str, message: m.Message, article: str) -> bool:
    return uow.buffer_stock.applied(kind, message.header.message_id, article)


def _moved(uow: UnitOfWork, stock: BufferStockRow, kind: str, quantity: int, message: m.Message, at: datetime) -> None:
    uow.buffer_stock.record_movement(stock, kind, quantity, message.header.message_id, at)


def _totals(lines: Sequence[m.DeviceLine]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for line in lines:
        totals[line.article_number] += line.quantity
    return dict(totals)


def _utc(value: datetime) -> datetime:
    """SQLite gives back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _is_message_id(value: str) -> bool:
    try:
        identifiers.check(IdKind.MESSAGE_ID, value)
    except identifiers.IdentifierError:
        return False
    return True
