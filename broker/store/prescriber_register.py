"""The prescriber register's store: who was seen, per customer, HSA-id, role and unit (table prescribers).

Handlers add the people each accepted message names (broker/handlers/prescribers.py); the unit of work
writes a batch's sightings at flush: aggregated per key, sorted, in one INSERT ... ON CONFLICT DO UPDATE.
One statement per batch keeps the hot path cheap; the sorted keys make concurrent batches lock rows in
the same order.

What a row says is the same however its sightings fell into batches and in whichever order the batches
ran: counts add up, first and last seen widen, the name is the latest activity's, and a prescriber's
förskrivarkod and profession (customer dialect 1.1) are those of the latest message that stated them
(`coded_at`), so a 1.0 message, which states neither, keeps them, and a message processed late does not
overwrite what a later one said. Ties go to the batch written last, as they do for the name.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select
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
    # A prescriber in customer dialect 1.1: what the message stated of them (None: it stated nothing).
    prescriber_code: str | None = None
    profession: str | None = None

    @property
    def coded(self) -> bool:
        return self.prescriber_code is not None or self.profession is not None


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
    """Upsert a batch's sightings: one row per person, role and unit; counts add up, first/last widen, the
    name and the 1.1 code and profession are the latest's (merge(), then the upsert's same rules)."""
    merged = merge(sightings)
    if not merged:
        return
    dialect = session.get_bind().dialect.name
    driver.insert(session, _upsert(dialect), [merged[k] for k in sorted(merged)])  # sorted: rows lock in one order


def merge(sightings: Iterable[Sighting]) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    """A batch's sightings as one row each per customer, HSA-id, role and unit: the upsert's parameters."""
    merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for s in sightings:
        key = (s.customer_number, s.hsa_id, s.role, s.unit_hsa_id)
        entry = merged.get(key)
        if entry is None:
            entry = merged[key] = {
                "customer_number": s.customer_number,
                "hsa_id": s.hsa_id,
                "role": s.role,
                "unit_hsa_id": s.unit_hsa_id,
                "name": s.name,
                "first_seen": s.at,
                "last_seen": s.at,
                "message_count": 0,
                "prescriber_code": None,
                "profession": None,
                "coded_at": None,
            }
        entry["message_count"] += 1
        if s.at < entry["first_seen"]:
            entry["first_seen"] = s.at
        if s.at >= entry["last_seen"]:
            entry["last_seen"], entry["name"] = s.at, s.name
        if s.coded and (entry["coded_at"] is None or s.at >= entry["coded_at"]):
            entry["prescriber_code"], entry["profession"], entry["coded_at"] = s.prescriber_code, s.profession, s.at
    return merged


@functools.cache
def _upsert(dialect: str) -> Any:
    """The register's upsert, built once per store kind: the batch's rows go as its parameters.

    Built anew for every batch, its expressions and cache key cost about as much as running it.
    """
    table = PrescriberRow.__table__
    insert = upsert.for_dialect(dialect, table)
    new = insert.excluded
    # The batch stated a code or profession at least as recent as the stored one: it replaces both.
    newer_code = and_(new.coded_at.is_not(None), or_(table.c.coded_at.is_(None), new.coded_at >= table.c.coded_at))
    return insert.on_conflict_do_update(
        index_elements=[table.c.customer_number, table.c.hsa_id, table.c.role, table.c.unit_hsa_id],
        set_={
            "name": case((new.last_seen >= table.c.last_seen, new.name), else_=table.c.name),
            "first_seen": case((new.first_seen < table.c.first_seen, new.first_seen), else_=table.c.first_seen),
            "last_seen": case((new.last_seen > table.c.last_seen, new.last_seen), else_=table.c.last_seen),
            "message_count": table.c.message_count + new.message_count,
            **{c: case((newer_code, new[c]), else_=table.c[c]) for c in ("prescriber_code", "profession", "coded_at")},
        },
    )


def listing(session: Session, customer_number: str) -> list[PrescriberRow]:
    query = select(PrescriberRow).where(PrescriberRow.customer_number == customer_number)
    order = (PrescriberRow.unit_hsa_id, PrescriberRow.name, PrescriberRow.hsa_id, PrescriberRow.role)
    return list(session.scalars(query.order_by(*order)))
