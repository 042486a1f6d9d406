"""Wires the broker together, once: settings -> store -> transport -> worker. Entry points call this."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from broker.config import Settings
from broker.runtime import Worker
from broker.store.db import make_engine, sessions, upgrade


def store(settings: Settings, *, migrate: bool = True) -> sessionmaker[Session]:
    engine = make_engine(settings.db_url)
    if migrate:
        upgrade(engine)
    return sessions(engine)


def worker(settings: Settings) -> Worker:
    from adapters.amqp.transport import AmqpTransport  # the edge is chosen here, not in the core

    return Worker(settings, AmqpTransport(settings), store(settings))
