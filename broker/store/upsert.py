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
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
