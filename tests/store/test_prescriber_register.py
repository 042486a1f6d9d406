"""The prescriber register: exactly the people seen in accepted customer messages, per role and unit."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections import Counter
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from broker.bootstrap import store as open_store
from broker.cli import app
from broker.config import Settings
from broker.handlers.prescribers import seen
from broker.model import messages as m
from broker.store.tables import AuditRow, PrescriberRow
from tests.support.fixtures import Store
from tests.support.prescribers import ENV, inbound, run


@pytest.fixture
def env(store: Store) -> dict[str, str]:
    return {**ENV, "HMC_DB_URL": store.url}


@pytest.fixture
def sessions(env: dict[str, str]) -> sessionmaker[Session]:
    return open_store(Settings.from_env(env))


def register(sessions: sessionmaker[Session]) -> list[PrescriberRow]:
    with sessions() as session:
        return list(session.scalars(select(PrescriberRow)))


def test_the_register_lists_exactly_the_people_seen(sessions: sessionmaker[Session], env: dict[str, str]) -> None:
    messages = inbound()
    assert len({type(x) for x in messages}) >= 6  # orders, withdrawals, work orders, pickups, reports, referrals
    run(sessions, env, *messages)
    expected = Counter((s.customer_number, s.hsa_id, s.role, s.unit_hsa_id) for x in messages for s in seen(x))
    rows = register(sessions)
    assert {(r.customer_number, r.hsa_id, r.role, r.unit_hsa_id): r.message_count for r in rows} == dict(expected)
    assert {r.role for r in rows} >= {"prescriber", "orderer"}


def test_a_rejected_message_adds_nobody(sessions: sessionmaker[Session], env: dict[str, str]) -> None:
    order = next(x for x in inbound() if isinstance(x, m.CustomerOrder))
    stranger = dataclasses.replace(order.header, customer_number="9999")  # not configured: rejected
    run(sessions, env, dataclasses.replace(order, header=stranger))
    assert register(sessions) == []


def test_batches_widen_first_and_last_seen_and_add_up_counts(
    sessions: sessionmaker[Session], env: dict[str, str]
) -> None:
    order = next(x for x in inbound() if isinstance(x, m.CustomerOrder) and x.orderer is None)
    early, late = order.header.sent_at - timedelta(days=30), order.header.sent_at + timedelta(days=3)

    def at(when: object, name: str, n: int) -> m.CustomerOrder:
        header = dataclasses.replace(order.header, message_id=f"00000000-0000-4000-8000-00000000000{n}", sent_at=when)
        prescriber = dataclasses.replace(order.prescriber, name=name)
        # Three orders (one order id each: the same id with other content would be refused as order.duplicate).
        return dataclasses.replace(order, header=header, order_id=f"{order.order_id}-{n}", prescriber=prescriber)

    run(sessions, env, at(order.header.sent_at, "Anna Lindqvist", 1), at(late, "Anna Lindqvist-Berg", 2))
    run(sessions, env, at(early, "Anna L", 3))  # an older message, processed later
    (row,) = register(sessions)
    assert row.message_count == 3 and row.name == "Anna Lindqvist-Berg"  # the name of the latest activity
    assert (row.first_seen.replace(tzinfo=UTC), row.last_seen.replace(tzinfo=UTC)) == (
        early.astimezone(UTC),
        late.astimezone(UTC),
    )


def test_the_register_exports_as_xlsx_and_csv(
    sessions: sessionmaker[Session], env: dict[str, str], tmp_path: Path
) -> None:
    run(sessions, env, *inbound())
    mine = [r for r in register(sessions) if r.customer_number == "1001"]
    runner = CliRunner()
    result = runner.invoke(
        app, ["report", "prescribers", "--customer", "1001", "-o", str(tmp_path / "r.xlsx")], env=env
    )
    assert result.exit_code == 0, result.output
    sheet = load_workbook(tmp_path / "r.xlsx").active
    assert sheet is not None
    listed = list(sheet.iter_rows(min_row=2, values_only=True))
    assert sorted((r[2], r[4]) for r in listed) == sorted(
        (r.hsa_id, {"prescriber": "förskrivare", "orderer": "beställare", "reporter": "felanmälare"}[r.role])
        for r in mine
    )
    assert all(isinstance(r[5], object) and r[5] is not None and r[7] >= 1 for r in listed)
    result = runner.invoke(
        app,
        [
            "report",
            "prescribers",
            "-c",
            "1001",
            "-f",
            "csv",
            "-o",
            str(tmp_path / "r.csv"),
            "--operator",
            "eva",
            "--json",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["file"] == str(tmp_path / "r.csv") and summary["rows"] == len(mine)
    rows = list(csv.reader(io.StringIO((tmp_path / "r.csv").read_bytes().decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:4] == ["Kund", "Enhet (HSA-id)", "HSA-id", "Namn"] and len(rows) == len(mine) + 1
    with sessions() as session:
        actions = [(a.action, a.actor) for a in session.scalars(select(AuditRow).order_by(AuditRow.id))]
    assert actions[-1] == ("register-export", "eva") and len(actions) == 2


def test_a_report_for_a_customer_not_configured_is_refused_and_writes_nothing(
    sessions: sessionmaker[Session], env: dict[str, str], tmp_path: Path
) -> None:
    result = CliRunner().invoke(app, ["report", "prescribers", "-c", "9999", "-o", str(tmp_path / "r.xlsx")], env=env)
    assert result.exit_code == 2
    assert "customer 9999 is not configured" in result.output
    assert not (tmp_path / "r.xlsx").exists()
