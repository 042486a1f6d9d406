"""Invoice data's repository: kept per customer and month, beyond the payload retention (table invoices)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.store.tables import InvoiceRow


class Invoices:
    def __init__(self, session: Session) -> None:
        self._session = session

    def kept(self, message_id: str) -> bool:
        """Whether the InvoiceData of this message id is stored already (a replay stores it once)."""
        return self._session.scalar(select(InvoiceRow.id).where(InvoiceRow.message_id == message_id)) is not None

    def add(self, **values: Any) -> None:
        self._session.add(InvoiceRow(received_at=datetime.now(UTC), **values))

    def of_month(self, customer_number: str, month: str) -> list[InvoiceRow]:
        """A customer's invoice data for a month (YYYY-MM), the latest received first."""
        query = (
            select(InvoiceRow)
            .where(InvoiceRow.customer_number == customer_number, InvoiceRow.period == month)
            .order_by(InvoiceRow.received_at.desc(), InvoiceRow.id.desc())
        )
        return list(self._session.scalars(query))
