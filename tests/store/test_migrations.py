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
