"""The message store: the source of truth. Queues are only transport.

Its modules are the only ones that write SQL. replay/ and adapters/ hold sessions and hand them to the
repositories here; they name the session types from this package, so that they need not import SQLAlchemy
at all (an import-linter contract in pyproject.toml holds them to it).
"""

from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Session", "sessionmaker"]
