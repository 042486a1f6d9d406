"""Retention's statements: measuring and removing the payloads a prune may remove, a chunk at a time.

Which messages qualify and after how long is replay/prune.py's policy. Removing keeps the row, its
events and where it went, and takes what can hold patient data: the payload, the bodies it sent, an
edit's diff and the patient_ref; each message gets a step that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, not_, or_, select, update
from sqlalchemy.orm import Session

from broker.store import messages
from broker.store.tables import MessageRow, OutboxRow
from broker.store.unit_of_work import now


@dataclass(frozen=True)
class Prunable:
    """Messages in one of `statuses`, received before `cutoff`, that still hold a payload: of the
    message types named, or (`others`) of every type but those, and of none."""

    statuses: tuple[str, ...]
    cutoff: datetime
    types: tuple[str, ...]
    others: bool = False

    def where(self) -> list[ColumnElement[bool]]:
        m = MessageRow
        out = [m.status.in_(self.statuses), m.payload.is_not(None), m.received_at < self.cutoff]
        if not self.others:
            out.append(m.message_type.in_(self.types))
        elif self.types:
            out.append(or_(m.message_type.is_(None), not_(m.message_type.in_(self.types))))
        return out


def measure(session: Session, p: Prunable) -> tuple[int, int]:
    """How many messages qualify, and their payload bytes."""
    size = func.coalesce(func.sum(func.length(MessageRow.payload)), 0)
    count, total = session.execute(select(func.count(), size).where(*p.where())).one()
    return int(count), int(total)


def remove_payloads(session: Session, p: Prunable, limit: int, detail: str) -> tuple[int, int]:
    """Remove the payloads of up to `limit` qualifying messages: how many, and their payload bytes."""
    found = session.execute(select(MessageRow.id, func.length(MessageRow.payload)).where(*p.where()).limit(limit)).all()
    if not found:
        return 0, 0
    ids = [pk for pk, _size in found]
    session.execute(
        update(MessageRow)
        .where(MessageRow.id.in_(ids))
        .values(payload=None, patient_ref=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(OutboxRow)
        .where(OutboxRow.message_pk.in_(ids))
        .values(body=b"")
        .execution_options(synchronize_session=False)
    )
    for edit in session.scalars(select(MessageRow).where(MessageRow.id.in_(ids), MessageRow.replay_of.is_not(None))):
        note = edit.properties.get("replay")
        if isinstance(note, dict) and note.get("diff"):
            edit.properties = {**edit.properties, "replay": {**note, "diff": "(pruned)"}}
    messages.add_steps(session, "prune", dict.fromkeys(ids, detail), now())
    return len(ids), sum(size or 0 for _pk, size in found)
