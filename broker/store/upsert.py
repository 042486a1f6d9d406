"""INSERT ... ON CONFLICT on both stores: PostgreSQL in production, SQLite embedded.

Both dialects speak the same clause (on_conflict_do_nothing / on_conflict_do_update); only the
construct comes from a different module. One statement, no read-then-write race between workers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert(session: Session, table: Any) -> Any:
    """An INSERT for `table` that supports on_conflict_do_nothing/do_update on this session's store."""
    return for_dialect(session.get_bind().dialect.name, table)


def for_dialect(dialect: str, table: Any) -> Any:
    """The same for a store kind by name ("postgresql", else SQLite): for statements built once and kept."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
