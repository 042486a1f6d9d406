"""Small statements of the hot path, run through the driver: a trickle pays SQLAlchemy's per-statement
machinery on every message.

SQLAlchemy's execution of a Core statement (cache key, execution context, result object) cost 120-170 us of
CPU here, the same statement through the driver 45-70 us, and a batch of one order runs about nine. So when
a statement has few rows (or keys), the unit of work runs it on its session's own connection (the same
transaction): psycopg's cursor on PostgreSQL, `exec_driver_sql` on SQLite (and wherever SQLAlchemy's statement
events have listeners). The statements stay SQLAlchemy Core, compiled once per dialect and row count: tables.py
still defines every column once, for SQLite and PostgreSQL; the columns' own bind and result processors convert
the values, so a row is stored and read as SQLAlchemy would store and read it; and errors are raised as
SQLAlchemy's, a lost connection invalidated (`_raise`), so the worker's retry sees the same exceptions.

More rows keep SQLAlchemy's multi-row statements: per row they cost a fifth of the driver's executemany (about
4 against 20 us a row at 100 rows), and their fixed cost is shared by the batch.

On PostgreSQL (psycopg) a batch's small writes and its COMMIT go to the server as one message (`hold`): one round
trip where a batch of one order made six (four INSERTs, two of them waiting for RETURNING ids, then COMMIT), their
ids drawn from the tables' sequences first (`reserve_ids`). One message of the simple query protocol, its values
bound as literals by psycopg (`ClientCursor.mogrify`), rather than psycopg's pipeline mode: the server runs nothing
of a message until all of it has arrived, so a worker frozen (SIGSTOP, a paused VM) while sending leaves no
statement run and no lock held, and its transaction "idle", which the worker's sessions end after a timeout. In
pipeline mode the writes ran as they arrived and a worker frozen before their Sync left its backend "active",
locks held, no timeout applying: the standby waited on them until the worker woke (a fault test, 60 s).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import psycopg
from sqlalchemy import Insert, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

SMALL = 4  # rows (or keys) up to which a statement goes through the driver

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class Compiled:
    """A statement's SQL for one dialect, its parameters in the driver's order and their converters."""

    sql: str
    names: tuple[str, ...]
    given: tuple[Any, ...]  # a parameter's value fixed in the statement (a literal), else _REQUIRED
    binds: tuple[Processor | None, ...]
    results: tuple[Processor | None, ...]  # per column of a SELECT (or RETURNING)

    def parameters(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = []
        for name, given, convert in zip(self.names, self.given, self.binds, strict=True):
            value = values[name] if given is _REQUIRED else values.get(name, given)
            out.append(value if convert is None else convert(value))
        return tuple(out)

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            value if convert is None else convert(value) for value, convert in zip(raw, self.results, strict=True)
        )


_REQUIRED = object()
_compiled: dict[tuple[str, Hashable], Compiled] = {}
_lock = threading.Lock()


def compiled(session: Session, key: Hashable, build: Callable[[], Any], column_keys: Sequence[str] = ()) -> Compiled:
    """`build()`'s statement compiled for the session's dialect, once per `key` (the statement and its shape:
    which columns an INSERT writes, how many keys a SELECT takes)."""
    dialect = session.get_bind().dialect
    found = _compiled.get((dialect.name, key))
    if found is None:
        with _lock:
            found = _compiled[(dialect.name, key)] = _compile(build(), dialect, list(column_keys) or None)
    return found


def _compile(statement: Any, dialect: Dialect, column_keys: list[str] | None) -> Compiled:
    done = statement.compile(dialect=dialect, column_keys=column_keys)
    names = tuple(done.positiontup or ())
    binds = [done.binds[name] for name in names]
    # An INSERT given only some columns would bind the others' Python defaults, which only SQLAlchemy's own
    # execution fills in: callers give every column.
    missing = [name for name in names if column_keys is not None and name not in column_keys]
    if missing:
        raise ValueError(f"{statement.table.name}: give every column a value ({', '.join(missing)} missing)")
    return Compiled(
        sql=done.string,
        names=names,
        given=tuple(_REQUIRED if b.required else b.value for b in binds),
        binds=tuple(b.type.dialect_impl(dialect).bind_processor(dialect) for b in binds),
        # The columns a SELECT or an INSERT's RETURNING gives back.
        results=tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in statement.exported_columns),
    )


def run(session: Session, statement: Compiled, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run the compiled statement for each of `rows` (one execute, or the driver's executemany)."""
    parameters = [statement.parameters(r) for r in rows]
    _execute(session, statement.sql, parameters if len(parameters) > 1 else parameters[0], fetch=False)


def fetch(session: Session, statement: Compiled, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    """The rows a compiled SELECT (or INSERT ... RETURNING) gives for one set of values."""
    return [statement.row(raw) for raw in _execute(session, statement.sql, statement.parameters(values), fetch=True)]


def _execute(session: Session, sql: str, parameters: Any, *, fetch: bool) -> list[Any]:
    """One statement on the session's connection (its transaction). psycopg's own cursor on PostgreSQL: even
    `exec_driver_sql` cost 70 us and more a statement here, a third of a small statement's CPU; its errors are
    raised as SQLAlchemy's (`_raise`). SQLite's statements cost no round trip and keep SQLAlchemy's path."""
    connection = session.connection()
    many = isinstance(parameters, list)
    if not _own_path(connection):
        # SQLite, or someone listens to SQLAlchemy's statements (tracing, a test counting them): its own path.
        result = connection.exec_driver_sql(sql, parameters)
        return list(result.fetchall()) if fetch else []
    raw: Any = connection.connection.driver_connection
    held: list[str] | None = session.info.get(_HELD)
    if held is not None and not fetch:
        held.extend(_literal(raw, sql, row) for row in (parameters if many else [parameters]))
        return []
    if held is not None:
        release(session)  # a result is wanted now: what is held goes first, in its order
    try:
        with raw.cursor() as cursor:
            # Not psycopg's executemany: it sends the rows in pipeline mode, and a worker frozen midway (SIGSTOP)
            # left its backend "active" with the rows' locks held and no timeout to end it (see `hold`).
            for row in parameters if many else [parameters]:
                cursor.execute(sql, row)
            return cursor.fetchall() if fetch else []
    except connection.dialect.loaded_dbapi.Error as error:
        _raise(connection, error, sql, parameters)


def _raise(connection: Any, error: Exception, sql: str, parameters: Any) -> NoReturn:
    """A driver's error as SQLAlchemy raises it (IntegrityError, OperationalError, ...), the connection invalidated
    when it is lost, so that the worker's retry sees what it would see from SQLAlchemy and gets a fresh one."""
    dialect = connection.dialect
    raw: Any = connection.connection.driver_connection
    lost = dialect.is_disconnect(error, raw, None)
    if lost:
        connection.invalidate(error)
    raise DBAPIError.instance(
        sql, parameters, error, dialect.loaded_dbapi.Error, connection_invalidated=lost
    ) from error


def _own_path(connection: Any) -> bool:
    """Whether statements go through psycopg's own cursor: PostgreSQL, nobody listening to SQLAlchemy's."""
    dispatch = connection.dispatch
    return bool(
        connection.dialect.driver == "psycopg" and not (dispatch.before_cursor_execute or dispatch.after_cursor_execute)
    )


def execute(session: Session, statement: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    """An UPDATE (or DELETE) built once by the caller, with explicit bind parameters, for each of `rows`. Many rows
    are SQLAlchemy's executemany, unless `hold` keeps them for its one message (psycopg's executemany pipelines)."""
    if len(rows) > SMALL and session.info.get(_HELD) is None:
        session.execute(statement, list(rows))
    elif rows:
        run(session, compiled(session, statement, lambda: statement), rows)


def insert(session: Session, statement: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert rows (all with the same keys, every column) by `statement`, an INSERT built once by the caller."""
    if len(rows) > SMALL:
        release(session)
        session.execute(statement, list(rows))
    elif rows:
        keys = tuple(rows[0])
        run(session, compiled(session, (statement, keys), statement.inline, keys), rows)


def insert_ids(session: Session, table: Table, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert rows (all with the same keys, every column but the id) into `table`; their ids, in row order."""
    pk = table.c.id
    if len(rows) > SMALL:
        release(session)
        query = table.insert().returning(pk, sort_by_parameter_order=True)
        return list(session.execute(query, list(rows)).scalars().all())
    if not rows:
        return []
    keys = tuple(rows[0])
    one = compiled(session, (table.name, "insert-returning-id", keys), lambda: table.insert().returning(pk), keys)
    return [fetch(session, one, row)[0][0] for row in rows]


def on_psycopg(session: Session) -> bool:
    """Whether the session's driver is psycopg (PostgreSQL): statements that take an array parameter there."""
    return session.get_bind().dialect.driver == "psycopg"


# ---------------------------------------------------------------- PostgreSQL: a batch's writes and COMMIT, one message

_HELD = "hmc.held_statements"  # Session.info key: the statements `hold` keeps for its one message
_PLACEHOLDER = re.compile(r"\$(\d+)")  # SQLAlchemy's numeric_dollar parameters (broker/store/db.py)


def holds(session: Session) -> bool:
    """Whether `hold` can keep the session's statements for one message (psycopg, and its own path)."""
    return _own_path(session.connection())


def reserve_ids(session: Session, counts: Mapping[Table, int]) -> dict[Table, list[int]]:
    """`counts[table]` fresh ids from each table's id sequence, ascending, in one query (PostgreSQL)."""
    wanted = [(table, count) for table, count in counts.items() if count]
    if not wanted:
        return {}
    sql = " UNION ALL ".join(
        f"SELECT {i}, nextval(pg_get_serial_sequence('{table.name}', 'id')) FROM generate_series(1, {count:d})"
        for i, (table, count) in enumerate(wanted)
    )
    found: dict[Table, list[int]] = {table: [] for table, _ in wanted}
    for i, value in _execute(session, sql, None, fetch=True):
        found[wanted[i][0]].append(value)
    return {table: sorted(ids) for table, ids in found.items()}


@contextmanager
def hold(session: Session) -> Iterator[Callable[[], None]]:
    """Statements without results run inside are kept, and the function yielded sends them with a COMMIT as one
    message. A statement that cannot be kept (one whose result is wanted, SQLAlchemy's multi-row statements, the
    ORM's flush: callers `release` first) sends what is kept before it, so the order is the order they were run.
    The COMMIT is sent as a statement rather than by SQLAlchemy; the session's commit afterwards finds the
    transaction ended and sends nothing. An error of any of them is raised as SQLAlchemy's (`_raise`)."""
    session.info[_HELD] = []
    try:
        yield lambda: _send(session, commit=True)
    finally:
        session.info.pop(_HELD, None)


def release(session: Session) -> None:
    """Send the statements `hold` keeps, now, without COMMIT (nothing when none are kept)."""
    _send(session, commit=False)


def _send(session: Session, *, commit: bool) -> None:
    held: list[str] | None = session.info.get(_HELD)
    if held is None or not (held or commit):
        return
    statements, held[:] = [*held, "COMMIT"] if commit else list(held), []
    connection = session.connection()
    raw: Any = connection.connection.driver_connection
    message = ";\n".join(statements)
    try:
        raw.execute(message)  # no parameters: the simple query protocol, which takes several statements
    except connection.dialect.loaded_dbapi.Error as error:
        _raise(connection, error, message[:2000], None)


def _literal(raw: Any, sql: str, parameters: Sequence[Any]) -> str:
    """A statement with its parameters bound as literals, as psycopg quotes them (`ClientCursor.mogrify`)."""
    order = [int(n) - 1 for n in _PLACEHOLDER.findall(sql)]
    query = _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
    return psycopg.ClientCursor(raw).mogrify(query, [parameters[i] for i in order])
