"""The migrations make exactly the tables of broker/store/tables.py, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from broker.store.db import make_engine, upgrade
from broker.store.tables import Base
from tests import services


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


def test_sqlite_store_matches_the_tables(tmp_path: Path) -> None:
    assert _differences(f"sqlite:///{tmp_path / 'store.sqlite'}") == []


def test_postgresql_store_matches_the_tables(postgres_url: str) -> None:
    services.empty_store(postgres_url)  # the session's database is shared with other tests
    assert _differences(postgres_url) == []
