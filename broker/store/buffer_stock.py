"""The buffer stores' repository: stock rows, their ledger (buffer_movements) and replenishments.

The rules (what a count, a withdrawal or a delivery does; when to replenish) are the handler's
(broker/handlers/buffer_stores.py); this module only reads and writes, in the ways that keep them exact
with competing workers: lock() makes and locks a batch's stock rows in key order, the ledger is unique per
message and article, and a partial unique index allows one open replenishment per article.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.orm import Session

from broker.store import upsert
from broker.store.tables import BufferMovementRow, BufferStockRow, ReplenishmentRow

Key = tuple[str, str, str]  # customer number, buffer store id, article number
_KEY = (BufferStockRow.customer_number, BufferStockRow.buffer_store_id, BufferStockRow.article_number)


class BufferStock:
    def __init__(self, session: Session) -> None:
        self._session = session

    def lock(self, fresh: Sequence[dict[str, Any]], keys: Sequence[Key]) -> list[BufferStockRow]:
        """Make the rows that do not exist yet (`fresh`: their values), then lock all `keys` in key order
        (SELECT ... FOR UPDATE on PostgreSQL; SQLite has one writer anyway)."""
        self._session.execute(upsert.insert(self._session, BufferStockRow).values(list(fresh)).on_conflict_do_nothing())
        query = select(BufferStockRow).where(tuple_(*_KEY).in_(keys)).order_by(*_KEY).with_for_update()
        return list(self._session.scalars(query.execution_options(populate_existing=True)))

    def get(self, key: Key) -> BufferStockRow | None:
        """A stock row lock() made and locked for this batch."""
        return self._session.get(BufferStockRow, key)

    def applied(self, kind: str, message_id: str, article: str) -> bool:
        """Whether this message moved this article's stock before (a redelivery, a retry, a replay)."""
        found = select(BufferMovementRow.id).where(
            BufferMovementRow.kind == kind,
            BufferMovementRow.message_id == message_id,
            BufferMovementRow.article_number == article,
        )
        return self._session.scalar(found) is not None

    def moved_since(self, stock: BufferStockRow, at: datetime) -> int:
        """The sum of withdrawals and deliveries dated after `at` (a count's time)."""
        since = self._session.scalar(
            select(func.coalesce(func.sum(BufferMovementRow.quantity), 0)).where(
                BufferMovementRow.customer_number == stock.customer_number,
                BufferMovementRow.buffer_store_id == stock.buffer_store_id,
                BufferMovementRow.article_number == stock.article_number,
                BufferMovementRow.kind != "count",
                BufferMovementRow.at > at,
            )
        )
        return int(since or 0)

    def record_movement(self, stock: BufferStockRow, kind: str, quantity: int, message_id: str, at: datetime) -> None:
        stock.updated_at = datetime.now(UTC)
        self._session.add(
            BufferMovementRow(
                customer_number=stock.customer_number,
                buffer_store_id=stock.buffer_store_id,
                article_number=stock.article_number,
                kind=kind,
                quantity=quantity,
                on_hand_after=stock.on_hand,
                message_id=message_id,
                at=at,
            )
        )

    def replenishment_open(self, stock: BufferStockRow) -> bool:
        is_open = select(ReplenishmentRow.id).where(
            ReplenishmentRow.customer_number == stock.customer_number,
            ReplenishmentRow.buffer_store_id == stock.buffer_store_id,
            ReplenishmentRow.article_number == stock.article_number,
            ReplenishmentRow.status == "open",
        )
        return self._session.scalar(is_open) is not None

    def open_replenishment(self, **values: Any) -> None:
        self._session.add(ReplenishmentRow(status="open", created_at=datetime.now(UTC), **values))
        self._session.flush()  # the partial unique index speaks now, inside this message's handling

    def close_replenishments(self, customer: str, order_id: str, status: str, by_message: str) -> list[str]:
        """Close the open replenishments of an order; the articles they were for."""
        closed = self._session.execute(
            update(ReplenishmentRow)
            .where(
                ReplenishmentRow.customer_number == customer,
                ReplenishmentRow.order_id == order_id,
                ReplenishmentRow.status == "open",
            )
            .values(status=status, closed_at=datetime.now(UTC), closed_by=by_message)
            .returning(ReplenishmentRow.article_number)
        ).all()
        return [article for (article,) in closed]


def replenishments_since(session: Session, since: datetime) -> list[ReplenishmentRow]:
    """The replenishment orders opened since `since`, oldest first."""
    query = select(ReplenishmentRow).where(ReplenishmentRow.created_at >= since).order_by(ReplenishmentRow.id)
    return list(session.scalars(query))
