"""The audit trail's repository (table audit): rows are added and listed, never changed.

Who may do what, and what a row says, is replay/audit.py's; the table refuses changes itself
(broker/store/tables.py and the triggers of migration 0002).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.store.tables import AuditRow
from broker.store.unit_of_work import now


def append(
    session: Session, *, actor: str, os_user: str, action: str, reason: str, details: dict[str, Any]
) -> AuditRow:
    """Add one row to the session's transaction (committed with what it records); flushed for its id."""
    row = AuditRow(at=now(), actor=actor[:100], os_user=os_user[:100], action=action, reason=reason, details=details)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class AuditQuery:
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    action: str | None = None
    limit: int = 50
    before: int | None = None  # page on: rows older than this id


def listing(session: Session, query: AuditQuery) -> Sequence[AuditRow]:
    """Newest first; the id pages on (ids grow with time)."""
    stmt = select(AuditRow)
    if query.since is not None:
        stmt = stmt.where(AuditRow.at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditRow.at < query.until)
    if query.actor:
        stmt = stmt.where(AuditRow.actor == query.actor)
    if query.action:
        stmt = stmt.where(AuditRow.action == query.action)
    if query.before is not None:
        stmt = stmt.where(AuditRow.id < query.before)
    return list(session.scalars(stmt.order_by(AuditRow.id.desc()).limit(query.limit)))
