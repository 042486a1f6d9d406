"""The prescriber register: exactly the people seen in accepted customer messages, per role and unit."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from broker.bootstrap import store as open_store
from broker.cli import app
from broker.config import Settings
from broker.handlers.prescribers import seen
from broker.model import messages as m
from broker.model.codes import Profession
from broker.store.prescriber_register import Sighting, record
from broker.store.tables import AuditRow, PrescriberRow
from tests.support.fixtures import Store
from tests.support.prescribers import ENV, inbound, run
from tests.support.profiles import at_most


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


# ---------------------------------------------------------------- förskrivarkod and profession (1.1, #17)


def _coded_order(n: int, sent_at: object, code: str | None, profession: Profession | None) -> m.CustomerOrder:
    """The 1.1 fixture's order under an id of its own, its prescriber stating `code` and `profession` (None, None:
    as a 1.0 order, which has neither)."""
    order = next(x for x in inbound() if isinstance(x, m.CustomerOrder) and x.prescriber.prescriber_code)
    version = "1.1" if code or profession else "1.0"
    header = dataclasses.replace(
        order.header, message_id=f"00000000-0000-4000-8000-0000000001{n:02d}", sent_at=sent_at, schema_version=version
    )
    prescriber = dataclasses.replace(order.prescriber, prescriber_code=code, profession=profession)
    return dataclasses.replace(order, header=header, order_id=f"{order.order_id}-{n}", prescriber=prescriber)


def test_a_1_1_order_fills_in_the_prescribers_code_and_profession_and_a_1_0_order_keeps_them(
    sessions: sessionmaker[Session], env: dict[str, str]
) -> None:
    first = _coded_order(1, datetime(2026, 11, 3, 9, 0, tzinfo=UTC), "AT40117", Profession.OCCUPATIONAL_THERAPIST)
    run(sessions, env, first)
    (row,) = [r for r in register(sessions) if r.role == "prescriber"]
    assert (row.prescriber_code, row.profession) == ("AT40117", "occupational-therapist")
    orderer = next(r for r in register(sessions) if r.role == "orderer")
    assert (orderer.prescriber_code, orderer.profession, orderer.coded_at) == (None, None, None)  # not a prescriber

    run(sessions, env, _coded_order(2, datetime(2026, 11, 4, 9, 0, tzinfo=UTC), None, None))  # 1.0: states neither
    (row,) = [r for r in register(sessions) if r.role == "prescriber"]
    assert (row.prescriber_code, row.profession, row.message_count) == ("AT40117", "occupational-therapist", 2)


def test_the_latest_message_that_states_the_code_wins_whichever_is_processed_last(
    sessions: sessionmaker[Session], env: dict[str, str]
) -> None:
    day = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    run(sessions, env, _coded_order(1, day + timedelta(days=2), "FT20001", Profession.PHYSIOTHERAPIST))
    run(sessions, env, _coded_order(2, day + timedelta(days=5), None, None))  # later, but 1.0
    run(sessions, env, _coded_order(3, day, "AT40117", Profession.OCCUPATIONAL_THERAPIST))  # older, processed last
    (row,) = [r for r in register(sessions) if r.role == "prescriber"]
    assert (row.prescriber_code, row.profession) == ("FT20001", "physiotherapist")
    assert row.coded_at.replace(tzinfo=UTC) == day + timedelta(days=2)
    run(sessions, env, _coded_order(4, day + timedelta(days=3), "FT20002", Profession.PHYSIOTHERAPIST))  # newer code
    (row,) = [r for r in register(sessions) if r.role == "prescriber"]
    assert (row.prescriber_code, row.message_count) == ("FT20002", 4)


def test_the_export_shows_the_code_and_profession_in_columns_of_their_own_after_the_earlier_ones(
    sessions: sessionmaker[Session], env: dict[str, str], tmp_path: Path
) -> None:
    run(sessions, env, _coded_order(1, datetime(2026, 11, 3, 9, 0, tzinfo=UTC), "AT40117", Profession.DOCTOR))
    customer = _coded_order(1, datetime(2026, 11, 3, tzinfo=UTC), "X", None).header.customer_number
    assert customer is not None
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(app, ["report", "prescribers", "-c", customer, "-f", "csv", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    header, *rows = csv.reader(io.StringIO(out.read_bytes().decode("utf-8-sig")), delimiter=";")
    # The earlier export's eight columns keep their places (a region's macro reads them by position).
    assert (header[:4], header[4:8:3]) == (["Kund", "Enhet (HSA-id)", "HSA-id", "Namn"], ["Roll", "Antal meddelanden"])
    assert header[8:] == ["Förskrivarkod", "Yrke"]
    by_role = {r[4]: r[8:] for r in rows}
    assert by_role == {"förskrivare": ["AT40117", "läkare"], "beställare": ["", ""]}


_AT = datetime(2026, 11, 3, 8, 0, tzinfo=UTC)
sightings_strategy = st.lists(
    st.builds(
        Sighting,
        customer_number=st.just("1001"),
        hsa_id=st.sampled_from(["SE2120001397-F12A", "SE2120001397-B07C"]),
        role=st.sampled_from(["prescriber", "orderer"]),
        unit_hsa_id=st.sampled_from(["", "SE2120001397-HSJN"]),
        name=st.sampled_from(["Karin Bergström", "Karin Berg", "Lena Åkesson"]),
        at=st.integers(0, 4).map(lambda h: _AT + timedelta(hours=h)),  # few times: ties happen
        prescriber_code=st.sampled_from([None, "AT40117", "FT20001"]),
        profession=st.sampled_from([None, "doctor", "nurse"]),
    ),
    min_size=1,
    max_size=12,
)


def _expected(sightings: list[Sighting]) -> dict[tuple[str, ...], tuple[object, ...]]:
    """The register row of each key, straight from the rule: counts, first and last seen, the name of the latest
    sighting and the code and profession of the latest that stated either (a tie: the one given last)."""
    out = {}
    for key in {(s.customer_number, s.hsa_id, s.role, s.unit_hsa_id) for s in sightings}:
        mine = [s for s in sightings if (s.customer_number, s.hsa_id, s.role, s.unit_hsa_id) == key]
        latest = max(enumerate(mine), key=lambda p: (p[1].at, p[0]))[1]
        coded = [(i, s) for i, s in enumerate(mine) if s.coded]
        stated = max(coded, key=lambda p: (p[1].at, p[0]))[1] if coded else None
        out[key] = (
            len(mine),
            min(s.at for s in mine),
            latest.at,
            latest.name,
            stated.prescriber_code if stated else None,
            stated.profession if stated else None,
            stated.at if stated else None,
        )
    return out


@settings(max_examples=at_most(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sightings=sightings_strategy, cuts=st.lists(st.integers(1, 11), max_size=3))
def test_the_register_is_the_same_however_its_sightings_fall_into_batches(
    sessions: sessionmaker[Session], sightings: list[Sighting], cuts: list[int]
) -> None:
    with sessions() as session:
        session.execute(delete(PrescriberRow))
        session.commit()
    bounds = [0, *sorted({c for c in cuts if c < len(sightings)}), len(sightings)]
    for start, end in itertools.pairwise(bounds):  # each batch a transaction of its own, in order
        with sessions() as session:
            record(session, sightings[start:end])
            session.commit()

    def utc(value: datetime | None) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC) if value.tzinfo is None else value

    rows = {
        (r.customer_number, r.hsa_id, r.role, r.unit_hsa_id): (
            r.message_count,
            utc(r.first_seen),
            utc(r.last_seen),
            r.name,
            r.prescriber_code,
            r.profession,
            utc(r.coded_at),
        )
        for r in register(sessions)
    }
    assert rows == _expected(sightings)
