"""Outage forecasts in the store (#17): `hmc-broker forecast` records, lists and clears them (audited), and a
worker's outage watch holds the reserve routine back while one has not passed. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from adapters.forecast_cli import back_by
from adapters.forecast_cli import register as register_forecast_cli
from broker.bootstrap import store as open_store
from broker.config import Settings
from broker.observability.watch import Level
from broker.runtime import Worker
from broker.store import forecasts
from broker.store.tables import AuditRow
from tests.support.commands import run_command
from tests.support.fakes import FakeTransport
from tests.support.fixtures import Store

NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def test_pending_forecasts_by_partner(store: Store) -> None:
    with store.sessions() as session:
        forecasts.put(session, "sesam2", NOW + timedelta(hours=2), "anna.k", "INC-1: SESAM2 says 06:00")
        forecasts.put(session, "customer-1001", NOW - timedelta(hours=1), "anna.k", "INC-2")
        session.commit()
        assert forecasts.pending(session, NOW) == {"sesam2": NOW + timedelta(hours=2)}
        forecasts.put(session, "sesam2", NOW + timedelta(hours=3), "bo.l", "INC-1: later")  # replaced
        session.commit()
        assert forecasts.pending(session, NOW) == {"sesam2": NOW + timedelta(hours=3)}
        assert forecasts.remove(session, "sesam2") and not forecasts.remove(session, "sesam2")
        session.commit()
        assert forecasts.pending(session, NOW) == {}


class Down(FakeTransport):
    """SESAM2's queue with nobody consuming it."""

    def partner_queues(self) -> dict[str, str]:
        return {"sesam2": "sesam2.in"}

    def queue_counts(self, queues: list[str]) -> dict[str, tuple[int, int] | None]:
        return {q: (3, 0) for q in queues}


def test_the_worker_s_watch_holds_the_reserve_routine_back_while_a_forecast_is_pending(store: Store) -> None:
    settings = Settings(db_url=store.url, stale_after_s=0, outage_warn_s=0, reserve_routine_s=0)
    worker = Worker(settings, Down(), open_store(settings))  # type: ignore[arg-type]
    with store.sessions() as session:
        forecasts.put(session, "sesam2", datetime.now(UTC) + timedelta(hours=1), "anna.k", "INC-1")
        session.commit()
    worker.look_at_partners()
    assert worker.watch.level("sesam2") is Level.WARNING
    with store.sessions() as session:
        forecasts.remove(session, "sesam2")
        session.commit()
    (transition,) = worker.look_at_partners()
    assert transition.level is Level.RESERVE_ROUTINE


def test_forecast_commands_are_audited(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    said = run_command(
        register_forecast_cli,
        db_url,
        "forecast",
        "set",
        "sesam2",
        "--back-by",
        "2h",
        "--operator",
        "anna.k",
        "--reason",
        "INC-1: SESAM2 drift says two hours",
    )
    assert "sesam2: forecast back by" in said
    (listed,) = json.loads(run_command(register_forecast_cli, db_url, "forecast", "list", "--json"))["forecasts"]
    assert (listed["partner"], listed["passed"], listed["operator"]) == ("sesam2", False, "anna.k")
    run_command(register_forecast_cli, db_url, "forecast", "clear", "sesam2", "--operator", "anna.k", "--reason", "up")
    assert json.loads(run_command(register_forecast_cli, db_url, "forecast", "list", "--json")) == {"forecasts": []}
    with open_store(Settings(db_url=db_url))() as session:
        assert [a.action for a in session.scalars(select(AuditRow))] == ["forecast", "forecast"]


def test_back_by_takes_a_time_or_a_period() -> None:
    assert back_by("2h", NOW) == NOW + timedelta(hours=2)
    assert back_by("+90m", NOW) == NOW + timedelta(minutes=90)
    assert back_by("2026-12-07T10:00+01:00", NOW) == datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
