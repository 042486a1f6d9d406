"""Engine, migrations and sessions of the message store (SQLite embedded, PostgreSQL in production)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
log = logging.getLogger(__name__)


def make_engine(url: str, *, idle_in_transaction_s: float | None = None, **options: Any) -> Engine:
    """An engine for `url`. With `idle_in_transaction_s`, PostgreSQL ends a session left idle inside a transaction
    for longer (its locks released; the client's next statement fails and is retried on a new connection)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers (status, search) run beside the worker; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    if make_url(url).get_driver_name() == "psycopg":
        # psycopg re-parses every query to turn %s placeholders into $n, and caches only short ones: a
        # batch's multi-row INSERTs were never cached, and parsing them cost 8-14 % of a worker's CPU.
        # A raw cursor takes SQLAlchemy's $n as they are.
        options = {"paramstyle": "numeric_dollar", **options}
        options["connect_args"] = {"cursor_factory": psycopg.RawCursor, **options.get("connect_args", {})}
        if idle_in_transaction_s:
            timeout_ms = int(idle_in_transaction_s * 1000)
            options["connect_args"]["options"] = f"-c idle_in_transaction_session_timeout={timeout_ms}"
    # pool_pre_ping (a round trip per checkout) by default; the worker turns it off (bootstrap.store): it
    # checks out a connection per batch, and retries a batch that finds its connection dead anyway.
    engine = create_engine(url, **{"pool_pre_ping": True, **options})
    # A batch's rows of one table go as multi-row INSERTs even when no ids are wanted back (steps,
    # prescribers): psycopg's executemany sends them one by one and waits on each in Python.
    engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


def alembic_config(engine: Engine, scripts: Path = MIGRATIONS) -> Config:
    config = Config()
    config.set_main_option("script_location", str(scripts))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head", *, scripts: Path = MIGRATIONS) -> list[str]:
    """Bring the schema to `revision`; safe to run at every start and from several workers.

    A store at a revision this code does not know was migrated by a newer release (a rolling upgrade: the
    next version's first worker migrated, this one is of the version before). Migrations are additive for
    one release (new tables, nullable or defaulted columns, new indexes; a destructive change waits for the
    release after), so this version's statements still work on it: the worker warns and runs instead of
    refusing. The unknown revisions are returned (empty: the store is at `revision`). `scripts`: another
    folder of migrations (the tests' next release)."""
    config = alembic_config(engine, scripts)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Workers starting together must not race to create the same tables.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
        known = {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}
        newer = sorted(set(MigrationContext.configure(connection).get_current_heads()) - known)
        if newer:
            log.warning(
                "the store's schema is at %s, newer than this version knows (%s): running on it, as migrations "
                "stay additive for one release; upgrade this worker",
                ", ".join(newer),
                ScriptDirectory.from_config(config).get_current_head(),
            )
            return newer
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    return []


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
