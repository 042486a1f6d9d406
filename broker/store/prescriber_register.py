"""The prescriber register's store: who was seen, per customer, HSA-id, role and unit (table prescribers).

Handlers add the people each accepted message names (broker/handlers/prescribers.py); the unit of work
writes a batch's sightings at flush: aggregated per key, sorted, in one INSERT ... ON CONFLICT DO UPDATE.
One statement per batch keeps the hot path cheap; the sorted keys make concurrent batches lock rows in
the same order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from broker.store import driver, upsert
from broker.store.tables import PrescriberRow


@dataclass(frozen=True)
class Sighting:
    customer_number: str
    hsa_id: str
    role: str
    unit_hsa_id: str  # '' when the message named no sending unit
    name: str
    at: datetime


class PrescriberRegister:
    """The unit of work's repository of the register: sightings wait here until the batch's flush."""

    def __init__(self) -> None:
        self._pending: list[Sighting] = []

    def add(self, sightings: Iterable[Sighting]) -> None:
        self._pending.extend(sightings)

    def write(self, session: Session) -> None:
        if self._pending:
            record(session, self._pending)
            self._pending = []


def record(session: Session, sightings: Iterable[Sighting]) -> None:
    """Upsert a batch's sightings: one row per person, role and unit; counts add up, first/last widen."""
    merged: dict[tuple[str, str, str, str], dict[str, object]] = {}
    for s in sightings:
        key = (s.customer_number, s.hsa_id, s.role, s.unit_hsa_id)
        entry = merged.get(key)
        if entry is None:
            merged[key] = {
                "customer_number": s.customer_number,
                "hsa_id": s.hsa_id,
                "role": s.role,
                "unit_hsa_id": s.unit_hsa_id,
                "name": s.name,
                "first_seen": s.at,
                "last_seen": s.at,
                "message_count": 1,
            }
            continue
        entry["message_count"] = int(entry["message_count"]) + 1  # type: ignore[call-overload]
        if s.at < entry["first_seen"]:  # type: ignore[operator]
            entry["first_seen"] = s.at
        if s.at >= entry["last_seen"]:  # type: ignore[operator]
            entry["last_seen"], entry["name"] = s.at, s.name
    if not merged:
        return
    dialect = session.get_bind().dialect.name
    driver.insert(session, _upsert(dialect), [merged[k] for k in sorted(merged)])  # sorted: rows lock in one order


@functools.cache
def _upsert(dialect: str) -> Any:
    """The register's upsert, built once per store kind: the batch's rows go as its parameters.

    Built anew for every batch, its expressions and cache key cost about as much as running it.
    """
    table = PrescriberRow.__table__
    insert = upsert.for_dialect(dialect, table)
    new = insert.excluded
    return insert.on_conflict_do_update(
        index_elements=[table.c.customer_number, table.c.hsa_id, table.c.role, table.c.unit_hsa_id],
        set_={
            "name": case((new.last_seen >= table.c.last_seen, new.name), else_=table.c.name),
            "first_seen": case((new.first_seen < table.c.first_seen, new.first_seen), else_=table.c.first_seen),
            "last_seen": case((new.last_seen > table.c.last_seen, new.last_seen), else_=table.c.last_seen),
            "message_count": table.c.message_count + new.message_count,
        },
    )


def listing(session: Session, customer_number: str) -> list[PrescriberRow]:
    query = select(PrescriberRow).where(PrescriberRow.customer_number == customer_number)
    order = (PrescriberRow.unit_hsa_id, PrescriberRow.name, PrescriberRow.hsa_id, PrescriberRow.role)
    return list(session.scalars(query.order_by(*order)))
