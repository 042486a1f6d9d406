"""The prescriber register: who was seen ordering for a customer, in which role and unit, first and last.

A manager reviews it to see that the users linked to a unit are the right ones (today the regions do it
with a Crystal Reports export). Every accepted customer message names its people: prescriber
(förskrivare), orderer (beställare) or fault reporter, each with an HSA-id, and the sending unit's HSA-id
in the header.

The pipeline gathers them per message (seen) and writes them once per batch (record): aggregated per
customer, HSA-id, role and unit, sorted, in one INSERT ... ON CONFLICT DO UPDATE. One statement per
batch keeps the hot path cheap; the sorted keys make concurrent batches lock rows in the same order.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from broker.model import messages as m
from broker.model.codes import Direction
from broker.store import upsert
from broker.store.tables import PrescriberRow
from broker.store.unit_of_work import UnitOfWork

ROLES = {"prescriber": "förskrivare", "orderer": "beställare", "reporter": "felanmälare"}
_PEOPLE = (("prescriber", "prescriber"), ("orderer", "orderer"), ("reporter", "reporter"))


@dataclass(frozen=True)
class Sighting:
    customer_number: str
    hsa_id: str
    role: str
    unit_hsa_id: str  # '' when the message named no sending unit
    name: str
    at: datetime


def seen(message: m.Message) -> list[Sighting]:
    """The people a customer message names, as the register keys them."""
    customer = message.header.customer_number
    if customer is None or message.direction is not Direction.INBOUND:
        return []
    at = message.header.sent_at.astimezone(UTC)
    unit = message.header.unit_hsa_id or ""
    found = []
    for attr, role in _PEOPLE:
        person = getattr(message, attr, None)
        if isinstance(person, m.Person):
            found.append(Sighting(customer, person.hsa_id.upper(), role, unit.upper(), person.name, at))
    return found


def record(uow: UnitOfWork, sightings: Iterable[Sighting]) -> None:
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
    dialect = uow.session.get_bind().dialect.name
    uow.session.execute(_upsert(dialect), [merged[k] for k in sorted(merged)])  # sorted: rows lock in one order


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
