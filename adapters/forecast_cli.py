"""`hmc-broker forecast`: record when a partner is expected back from an outage, which holds back the reserve
routine until then (Skåne's routine: four hours and still no forecast). Audited: who, why, until when.

The rule is the outage watch's (broker/observability/watch.py); the forecasts live in the store
(broker/store/forecasts.py), so every worker and `hmc-broker status` see the same one.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from broker.config import Settings
from broker.store import Session, forecasts, sessionmaker
from replay import audit

forecast_app = typer.Typer(help="Outage forecasts: a partner expected back by a time holds back the reserve routine.")
Partner = Annotated[str, typer.Argument(help="sesam2, or customer-<number>")]
Operator = Annotated[str | None, typer.Option("--operator", help="who records it (audited)")]
Reason = Annotated[str | None, typer.Option("--reason", help="why: the incident, who gave the forecast (audited)")]
_PERIOD = re.compile(r"\s*\+?([0-9]+)\s*(m|min|h)\s*", re.IGNORECASE)


def _store() -> tuple[Settings, sessionmaker[Session]]:
    from broker.bootstrap import store

    settings = Settings.from_env()
    return settings, store(settings)


def _partners(settings: Settings) -> list[str]:
    return ["sesam2", *(f"customer-{c.number}" for c in settings.customers)]


def back_by(text: str, now: datetime | None = None) -> datetime:
    """A time (ISO 8601; without offset: local time) or a period from now ('2h', '+90m')."""
    now = now or datetime.now(UTC)
    if period := _PERIOD.fullmatch(text):
        amount, unit = int(period[1]), period[2].lower()
        return now + (timedelta(hours=amount) if unit == "h" else timedelta(minutes=amount))
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a time (2026-12-07T10:00+01:00) nor a period (2h)") from None
    return (when if when.tzinfo else when.astimezone()).astimezone(UTC)


@forecast_app.command("set")
def set_forecast(
    partner: Partner,
    until: Annotated[str, typer.Option("--back-by", help="a time (2026-12-07T10:00+01:00) or a period from now (2h)")],
    operator: Operator = None,
    reason: Reason = None,
) -> None:
    """Record (or replace) a partner's forecast."""
    actor = _actor(operator, reason)
    settings, sessions = _store()
    if partner not in _partners(settings):
        typer.echo(f"error: unknown partner {partner!r}; expected {', '.join(_partners(settings))}", err=True)
        raise typer.Exit(2)
    when = back_by(until)
    if when <= datetime.now(UTC):
        typer.echo(f"error: --back-by {until} is not in the future", err=True)
        raise typer.Exit(2)
    with sessions() as session:
        forecasts.put(session, partner, when, actor.operator, actor.reason)
        audit.record(session, actor, "forecast", {"partner": partner, "back_by": when.isoformat()})
        session.commit()
    typer.echo(f"{partner}: forecast back by {when.isoformat()}; the reserve routine waits until then")


@forecast_app.command("clear")
def clear_forecast(partner: Partner, operator: Operator = None, reason: Reason = None) -> None:
    """Withdraw a partner's forecast: the reserve routine follows the outage's length alone again."""
    actor = _actor(operator, reason)
    _, sessions = _store()
    with sessions() as session:
        removed = forecasts.remove(session, partner)
        audit.record(session, actor, "forecast", {"partner": partner, "cleared": removed})
        session.commit()
    typer.echo(f"{partner}: {'forecast withdrawn' if removed else 'had no forecast'}")


@forecast_app.command("list")
def list_forecasts(as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False) -> None:
    """Every recorded forecast, passed ones too (they no longer hold anything back)."""
    _, sessions = _store()
    with sessions() as session:
        rows = [
            {
                "partner": r.partner,
                "back_by": forecasts.utc(r.back_by).isoformat(),
                "passed": forecasts.utc(r.back_by) <= datetime.now(UTC),
                "operator": r.operator,
                "reason": r.reason,
            }
            for r in forecasts.all_forecasts(session)
        ]
    if as_json:
        typer.echo(json.dumps({"forecasts": rows}))
        return
    for row in rows or [{"partner": "(none)", "back_by": "", "passed": False, "operator": "", "reason": ""}]:
        state = " (passed)" if row["passed"] else ""
        typer.echo(f"{row['partner']:<16} {row['back_by']}{state}  {row['operator']}  {row['reason']}")


def _actor(operator: str | None, reason: str | None) -> audit.Actor:
    try:
        return audit.Actor.required(operator, reason, "a forecast")
    except audit.AuditRequired as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    app.add_typer(forecast_app, name="forecast")
