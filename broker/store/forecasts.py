"""Outage forecasts: one per partner at most, read once per look of the outage watch (never per message)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from broker.store import upsert
from broker.store.tables import OutageForecastRow


def pending(session: Session, now: datetime) -> dict[str, datetime]:
    """Partner -> the time it is forecast back, for every forecast that has not passed."""
    query = select(OutageForecastRow.partner, OutageForecastRow.back_by).where(OutageForecastRow.back_by > now)
    return {partner: utc(back_by) for partner, back_by in session.execute(query)}


def all_forecasts(session: Session) -> list[OutageForecastRow]:
    return list(session.scalars(select(OutageForecastRow).order_by(OutageForecastRow.partner)))


def put(session: Session, partner: str, back_by: datetime, operator: str, reason: str) -> None:
    """Record (or replace) the partner's forecast."""
    values = {
        "partner": partner,
        "back_by": back_by.astimezone(UTC),
        "recorded_at": datetime.now(UTC),
        "operator": operator[:100],
        "reason": reason,
    }
    statement = upsert.insert(session, OutageForecastRow.__table__).values(values)
    changed = {k: statement.excluded[k] for k in ("back_by", "recorded_at", "operator", "reason")}
    session.execute(statement.on_conflict_do_update(index_elements=["partner"], set_=changed))


def remove(session: Session, partner: str) -> bool:
    """Withdraw the partner's forecast; whether there was one."""
    removed = session.execute(delete(OutageForecastRow).where(OutageForecastRow.partner == partner))
    return bool(getattr(removed, "rowcount", 0))


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment  # SQLite returns naive UTC
