"""A worker of the previous version on a store the next release has already migrated (a rolling upgrade): it
warns and runs instead of refusing, because migrations are additive for one release (README.md, High
availability). Both stores; tests/e2e/test_rolling_restart.py does it under load with worker processes."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import Engine, inspect, select, text
from typer.testing import CliRunner

from broker.cli import app
from broker.store.db import make_engine, upgrade
from broker.store.tables import MessageRow
from broker.store.unit_of_work import UnitOfWork
from tests.support import next_release
from tests.support.fixtures import Store, new_message


def test_a_store_one_migration_ahead_is_used_as_it_is_with_a_warning(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(store.url)
    next_release.migrate_ahead(engine)
    try:
        _runs_on_it(store, engine, caplog)
    finally:
        next_release.drop_extra(engine)
        engine.dispose()


def _runs_on_it(store: Store, engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="broker.store.db"):
        assert upgrade(engine) == [next_release.REVISION], "left as it is, and said so"
        assert upgrade(engine) == [next_release.REVISION], "at every start"
    assert any(next_release.REVISION in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    with engine.connect() as conn:
        assert "next_release_note" in {c["name"] for c in inspect(conn).get_columns("messages")}
    # This version's statements on the newer schema: a message stored and read back.
    with UnitOfWork(store.sessions) as uow:
        new_message(uow, "m-rolling")
        uow.commit()
    with store.sessions() as session:
        assert session.scalars(select(MessageRow.message_id)).all() == ["m-rolling"]


def test_db_upgrade_says_the_store_is_newer_and_changes_nothing(store: Store) -> None:
    engine = make_engine(store.url)
    next_release.migrate_ahead(engine)
    try:
        result = CliRunner().invoke(app, ["db", "upgrade", "--json"], env={"HMC_DB_URL": store.url})
        assert result.exit_code == 0, result.output
        assert json.loads(result.output.strip().splitlines()[-1])["newer"] == [next_release.REVISION]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == next_release.REVISION
    finally:
        next_release.drop_extra(engine)
        engine.dispose()


def test_a_store_behind_is_still_migrated(store: Store) -> None:
    engine = make_engine(store.url)
    upgrade(engine, "0009")
    assert upgrade(engine) == []
    with engine.connect() as conn:
        assert "steps" in {c["name"] for c in inspect(conn).get_columns("messages")}
    engine.dispose()
