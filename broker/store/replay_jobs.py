"""Replay jobs' repository (tables replay_jobs and replay_items): a snapshot of the ids a replay command
replays, worked through in position order, so that an interrupted job can be resumed (replay/replay.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from broker.store.tables import ReplayItemRow, ReplayJobRow
from broker.store.unit_of_work import now


def start(
    session: Session, *, actor: str, reason: str, force: bool, details: dict[str, Any], message_pks: Sequence[int]
) -> int:
    """A running job with its items, in the session's transaction; its id."""
    stamp = now()
    job = ReplayJobRow(
        created_at=stamp,
        updated_at=stamp,
        actor=actor,
        reason=reason,
        force=force,
        status="running",
        total=len(message_pks),
        done=0,
        details=details,
    )
    session.add(job)
    session.flush()
    session.add_all(ReplayItemRow(job_id=job.id, position=i, message_pk=pk) for i, pk in enumerate(message_pks))
    return job.id


def get(session: Session, job_id: int) -> ReplayJobRow | None:
    return session.get(ReplayJobRow, job_id)


def recent(session: Session, limit: int) -> list[ReplayJobRow]:
    return list(session.scalars(select(ReplayJobRow).order_by(ReplayJobRow.id.desc()).limit(limit)))


def next_items(session: Session, job_id: int, limit: int) -> list[ReplayItemRow]:
    """The job's first `limit` items not yet replayed, in snapshot order."""
    query = (
        select(ReplayItemRow)
        .where(ReplayItemRow.job_id == job_id, ReplayItemRow.outcome.is_(None))
        .order_by(ReplayItemRow.position)
        .limit(limit)
    )
    return list(session.scalars(query))


def tick_off(session: Session, job_id: int, outcomes: Sequence[tuple[int, int | None, str]]) -> None:
    """Record each item's outcome (position, the row it made, its status) and count them done."""
    for position, replay_pk, status in outcomes:
        session.execute(
            update(ReplayItemRow)
            .where(ReplayItemRow.job_id == job_id, ReplayItemRow.position == position)
            .values(replay_pk=replay_pk, outcome=status)
        )
    session.execute(
        update(ReplayJobRow)
        .where(ReplayJobRow.id == job_id)
        .values(done=ReplayJobRow.done + len(outcomes), updated_at=now())
    )


def close(session: Session, job_id: int) -> None:
    """The job is done when no item is left, else interrupted (resumable)."""
    left = session.scalar(
        select(func.count())
        .select_from(ReplayItemRow)
        .where(ReplayItemRow.job_id == job_id, ReplayItemRow.outcome.is_(None))
    )
    session.execute(
        update(ReplayJobRow)
        .where(ReplayJobRow.id == job_id)
        .values(status="interrupted" if left else "done", updated_at=now())
    )
