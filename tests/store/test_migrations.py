"""The migrations make exactly the tables of broker/store/tables.py, on SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from broker.store.db import make_engine, upgrade
from broker.store.tables import Base
from tests.support.fixtures import Store


def _differences(url: str) -> list[Any]:
    engine = make_engine(url)
    upgrade(engine)
    sqlite = engine.dialect.name == "sqlite"

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        return not (sqlite and name == "ix_messages_error_trgm")  # PostgreSQL only (pg_trgm)

    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn, opts={"include_object": include}), Base.metadata)
    engine.dispose()
    return list(found)


def test_the_migrated_store_matches_the_tables(store: Store) -> None:
    assert _differences(store.url) == []


def test_0009_fills_the_rule_of_every_stored_error_and_indexes_the_failures(store: Store) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import insert, inspect, select

    from broker.store.error_rules import stored_rule

    engine = make_engine(store.url)
    upgrade(engine, "0008")
    stamp = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    errors = [
        "personnummer.check-digit at /CustomerOrder/Patient/PatientId: check digit",
        "publish: unroutable: NO_ROUTE",
        None,
        "   ",
    ]
    messages = Base.metadata.tables["messages"]  # the insert names no error_rule: 0008 has none
    with engine.begin() as conn:
        conn.execute(
            insert(messages),
            [
                {
                    "message_id": f"m-{i}",
                    "direction": "inbound",
                    "status": "parked" if i % 2 else "rejected",
                    "attempts": 1,
                    "last_error": e,
                    "received_at": stamp,
                    "updated_at": stamp,
                    "properties": {},
                }
                for i, e in enumerate(errors)
            ],
        )
    upgrade(engine)
    with engine.connect() as conn:
        found = conn.execute(select(messages.c.last_error, messages.c.error_rule)).all()
        indexes = {i["name"] for i in inspect(conn).get_indexes("messages")}
    engine.dispose()
    assert sorted(found, key=str) == sorted(((e, stored_rule(e)) for e in errors), key=str)
    assert {rule for _e, rule in found} == {"personnummer.check-digit", "publish", None}
    assert "ix_messages_failures" in indexes


def test_0011_keeps_a_worker_of_the_previous_version_writing_the_prescriber_register(store: Store) -> None:
    """A rolling upgrade: a worker of 0010's code still upserts its sightings (naming none of 0011's columns)
    into a store migrated to 0011; its rows get no code, and a code stated before stays."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from broker.store import upsert

    engine = make_engine(store.url)
    upgrade(engine, "0010")
    old = sa.Table(  # the prescribers table as 0010's code knows it
        "prescribers",
        sa.MetaData(),
        *(sa.Column(c, sa.String) for c in ("customer_number", "hsa_id", "role", "unit_hsa_id", "name")),
        sa.Column("first_seen", sa.DateTime(timezone=True)),
        sa.Column("last_seen", sa.DateTime(timezone=True)),
        sa.Column("message_count", sa.Integer),
    )
    at = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    key = {"customer_number": "1001", "hsa_id": "SE2120001397-F12A", "role": "prescriber", "unit_hsa_id": ""}
    row = {**key, "name": "Karin Bergström", "first_seen": at, "last_seen": at, "message_count": 1}

    def old_worker_writes() -> None:
        insert = upsert.for_dialect(engine.dialect.name, old)
        statement = insert.on_conflict_do_update(
            index_elements=[old.c[k] for k in key], set_={"message_count": old.c.message_count + 1}
        )
        with engine.begin() as conn:
            conn.execute(statement, [row])

    old_worker_writes()
    upgrade(engine)
    old_worker_writes()
    table = Base.metadata.tables["prescribers"]
    with engine.begin() as conn:
        conn.execute(table.update().values(prescriber_code="AT40117", profession="doctor", coded_at=at))
    old_worker_writes()
    with engine.connect() as conn:
        (found,) = conn.execute(sa.select(table)).mappings().all()
    engine.dispose()
    assert (found["message_count"], found["prescriber_code"], found["profession"]) == (3, "AT40117", "doctor")
