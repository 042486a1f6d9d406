"""Closing a failed message by hand: it needs no replay (the sender sent a corrected one, or the
business side handled it on paper), so it should stop showing as parked or rejected and become
eligible for retention."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.store import Session, messages
from broker.store.unit_of_work import UNRESOLVED, now
from replay import audit


def resolve(session: Session, ids: Sequence[int], actor: audit.Actor, selection: dict[str, Any]) -> dict[int, str]:
    """Mark the unresolved ones among `ids` resolved; per id, its status before (or why not)."""
    rows = messages.by_ids(session, ids)
    out: dict[int, str] = {}
    changed: dict[int, str] = {}  # id -> the step's detail
    stamp = now()
    for pk in ids:
        row = rows.get(pk)
        if row is None:
            out[pk] = "not found"
            continue
        if row.status not in UNRESOLVED:
            out[pk] = f"left as {row.status} (only rejected or parked messages are resolved)"
            continue
        out[pk] = f"was {row.status}"
        changed[pk] = f"was {row.status}; resolved by {actor.operator}: {actor.reason}"
        row.status, row.updated_at = "resolved", stamp  # written at the commit
    messages.add_steps(session, "resolve", changed, stamp)
    audit.record(session, actor, "resolve", {**selection, "messages": list(changed), "count": len(changed)})
    session.commit()
    return out
