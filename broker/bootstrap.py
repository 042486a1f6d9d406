"""Wires the broker together, once: settings -> store -> transport -> worker. Entry points call this."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from broker.catalog import Catalog
from broker.config import Settings
from broker.runtime import Worker
from broker.store.db import make_engine, sessions, upgrade


def store(
    settings: Settings, *, migrate: bool = True, pre_ping: bool = True, idle_in_transaction_s: float | None = None
) -> sessionmaker[Session]:
    engine = make_engine(settings.db_url, pool_pre_ping=pre_ping, idle_in_transaction_s=idle_in_transaction_s)
    if migrate:
        upgrade(engine)
    return sessions(engine)


def catalog(settings: Settings) -> Catalog | None:
    from adapters.catalog_file import load_catalog

    return load_catalog(Path(settings.catalog)) if settings.catalog else None


def worker(settings: Settings) -> Worker:
    from adapters.amqp.transport import AmqpTransport  # the edge is chosen here, not in the core

    # A frozen worker (SIGSTOP, a paused VM) gives up its partitions when RabbitMQ drops its silent connection
    # (adapters/amqp/transport.py), but a transaction it had open would still hold the row locks of the
    # messages the standby now gets: PostgreSQL ends it after this long. A healthy worker's longest wait
    # inside a transaction is the relay's for confirms (HMC_CONFIRM_TIMEOUT_S).
    idle_s = settings.confirm_timeout_s + 5
    # No ping per checkout: the worker checks out a connection per batch, and a batch that finds its
    # connection dead (PostgreSQL restarted, or the idle transaction ended) is retried on a fresh one.
    sessions = store(settings, pre_ping=False, idle_in_transaction_s=idle_s)
    return Worker(settings, AmqpTransport(settings), sessions, catalog=catalog(settings))
