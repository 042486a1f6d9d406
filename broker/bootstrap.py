"""Wires the broker together, once: settings -> store -> transport -> worker. Entry points call this."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from broker.catalog import Catalog
from broker.config import Settings
from broker.runtime import Worker
from broker.store.db import make_engine, sessions, upgrade


def store(settings: Settings, *, migrate: bool = True, pre_ping: bool = True) -> sessionmaker[Session]:
    engine = make_engine(settings.db_url, pool_pre_ping=pre_ping)
    if migrate:
        upgrade(engine)
    return sessions(engine)


def catalog(settings: Settings) -> Catalog | None:
    from adapters.catalog_file import load_catalog

    return load_catalog(Path(settings.catalog)) if settings.catalog else None


def worker(settings: Settings) -> Worker:
    from adapters.amqp.transport import AmqpTransport  # the edge is chosen here, not in the core

    # No ping per checkout: the worker checks out a connection per batch, and a batch that finds its
    # connection dead (PostgreSQL restarted) is retried on a fresh one (Worker._db_retrying).
    return Worker(settings, AmqpTransport(settings), store(settings, pre_ping=False), catalog=catalog(settings))
