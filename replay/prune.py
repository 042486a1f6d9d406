"""Retention: payloads of settled messages are removed once they are old enough.

A message's row, its events and where it went stay (the history an operator reads); its payload, the
bodies of what it sent, an edit's diff and its patient_ref go, so that nothing about the patient
outlives the retention period. Only settled messages are pruned: delivered, answered, skipped
(a replay that found everything sent), replayed or resolved. Rejected and parked messages wait until a
replay or an operator resolves them; in-flight ones (received, forwarded) are never touched.

Retention is per message type, HMC_RETENTION="default=90d,InvoiceData=3650d" (default 90 days). A
payload goes only when it is older than both its type's retention and --older-than: the command line
can keep more, never less, than the policy.

HMC_RETENTION is read here, not in broker/config.py, because only this command uses it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, insert, not_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from broker.store.tables import EventRow, MessageRow, OutboxRow
from broker.store.unit_of_work import now
from replay import audit
from replay.filters import FilterError, parse_period

SETTLED = ("delivered", "answered", "skipped", "replayed", "resolved")
DEFAULT_RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class Retention:
    default: timedelta = DEFAULT_RETENTION
    per_type: Mapping[str, timedelta] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> Retention:
        """`default=90d,InvoiceData=3650d`: a period per message type, and one for all others."""
        default, per_type = DEFAULT_RETENTION, {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, period = item.partition("=")
            if not sep or not name.strip():
                raise FilterError(f"HMC_RETENTION: {item!r} is not TYPE=PERIOD (e.g. InvoiceData=3650d)")
            value = parse_period(period)
            if name.strip() == "default":
                default = value
            else:
                per_type[name.strip()] = value
        return cls(default, per_type)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Retention:
        return cls.parse((os.environ if env is None else env).get("HMC_RETENTION", ""))


@dataclass(frozen=True)
class Removed:
    """What prune removes (or, in a dry run, would) for one message type."""

    message_type: str  # "(other types)" for every type under the default retention
    keep: timedelta
    cutoff: datetime
    messages: int
    payload_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.message_type,
            "keep_days": self.keep / timedelta(days=1),
            "cutoff": self.cutoff.isoformat(),
            "messages": self.messages,
            "payload_bytes": self.payload_bytes,
        }


OTHERS = "(other types)"


def _groups(retention: Retention, older_than: timedelta | None) -> list[tuple[str, timedelta, Any]]:
    """(label, period kept, type condition) per retention class."""
    floor = older_than or timedelta(0)
    groups: list[tuple[str, timedelta, Any]] = [
        (name, max(period, floor), MessageRow.message_type == name)
        for name, period in sorted(retention.per_type.items())
    ]
    named = list(retention.per_type)
    others = or_(MessageRow.message_type.is_(None), not_(MessageRow.message_type.in_(named))) if named else None
    groups.append((OTHERS, max(retention.default, floor), others))
    return groups


def _prunable(type_condition: ColumnElement[bool] | None, cutoff: datetime) -> list[ColumnElement[bool]]:
    conditions = [MessageRow.status.in_(SETTLED), MessageRow.payload.is_not(None), MessageRow.received_at < cutoff]
    return [*conditions, type_condition] if type_condition is not None else conditions


def plan(session: Session, retention: Retention, older_than: timedelta | None) -> list[Removed]:
    at = now()
    out = []
    for label, keep, condition in _groups(retention, older_than):
        cutoff = at - keep
        count, size = session.execute(
            select(func.count(), func.coalesce(func.sum(func.length(MessageRow.payload)), 0)).where(
                and_(*_prunable(condition, cutoff))
            )
        ).one()
        out.append(Removed(label, keep, cutoff, int(count), int(size)))
    return out


def prune(
    sessions: sessionmaker[Session],
    retention: Retention,
    *,
    older_than: timedelta | None,
    actor: audit.Actor,
    dry_run: bool = False,
    chunk: int = 1000,
) -> list[Removed]:
    """Remove what the retention allows, `chunk` messages per transaction; what was (or would be) removed."""
    with sessions() as session:
        planned = plan(session, retention, older_than)
        if dry_run or not any(r.messages for r in planned):
            return planned
        audit.record(
            session,
            actor,
            "prune",
            {
                "older_than_days": older_than / timedelta(days=1) if older_than else None,
                "retention": {r.message_type: r.keep / timedelta(days=1) for r in planned},
                "planned": [r.as_dict() for r in planned],
            },
        )
        session.commit()
    conditions = {label: condition for label, _keep, condition in _groups(retention, older_than)}
    done = []
    for planned_one in planned:
        count, size = 0, 0
        where = _prunable(conditions[planned_one.message_type], planned_one.cutoff)
        while pruned := _prune_chunk(sessions, where, planned_one, chunk):
            count, size = count + pruned[0], size + pruned[1]
        done.append(Removed(planned_one.message_type, planned_one.keep, planned_one.cutoff, count, size))
    return done


def _prune_chunk(
    sessions: sessionmaker[Session], conditions: list[ColumnElement[bool]], removed: Removed, chunk: int
) -> tuple[int, int] | None:
    """Prune up to `chunk` messages in one transaction: how many and their payload bytes (None: none left)."""
    with sessions() as session:
        found = session.execute(
            select(MessageRow.id, func.length(MessageRow.payload)).where(*conditions).limit(chunk)
        ).all()
        if not found:
            return None
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
        for edit in session.scalars(
            select(MessageRow).where(MessageRow.id.in_(ids), MessageRow.replay_of.is_not(None))
        ):
            note = edit.properties.get("replay")
            if isinstance(note, dict) and note.get("diff"):
                edit.properties = {**edit.properties, "replay": {**note, "diff": "(pruned)"}}
        detail = f"payload removed after the retention period ({removed.keep / timedelta(days=1):g} days)"
        stamp = now()
        session.execute(
            insert(EventRow),
            [{"message_pk": pk, "stage": "prune", "outcome": "ok", "detail": detail, "at": stamp} for pk in ids],
        )
        session.commit()
        return len(ids), sum(size or 0 for _pk, size in found)
