"""Fixtures of the store operations' tests (replay, search, show, edit, audit, prune, the CLI): a worker on a
fake transport over the one `store` fixture (tests/support/fixtures.py), SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from broker.bootstrap import store as open_store
from broker.config import Settings
from broker.runtime import Worker
from tests.support.fakes import FakeTransport
from tests.support.fixtures import Store
from tests.support.replaying import CUSTOMERS, Broker


@pytest.fixture
def db_url(store: Store) -> str:
    """The store's URL (test_replay_cli.py narrows it to the embedded store)."""
    return store.url


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(db_url=db_url, customers=CUSTOMERS, publish_attempts=2, wire_tap=False)


@pytest.fixture
def broker(settings: Settings) -> Broker:
    transport = FakeTransport()
    sessions = open_store(settings)
    return Broker(settings, transport, Worker(settings, transport, sessions), sessions)  # type: ignore[arg-type]
