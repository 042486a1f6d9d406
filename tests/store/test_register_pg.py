"""The prescriber register's upsert on the real PostgreSQL: concurrent batches with the same people add up."""

from __future__ import annotations

import dataclasses
import threading
import uuid

import pytest
from sqlalchemy import select

from broker.model import messages as m
from broker.store.tables import PrescriberRow
from tests.support.fixtures import Store
from tests.support.prescribers import ENV, inbound, run


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_concurrent_batches_naming_the_same_people_add_up(store: Store) -> None:
    factory = store.sessions
    env = {**ENV, "HMC_DB_URL": store.url}
    orders = [x for x in inbound() if isinstance(x, m.CustomerOrder)]

    def copies() -> list[m.Message]:
        """The same people under new message and order ids (one order stays on one worker in production)."""
        out: list[m.Message] = []
        for o in orders:
            ref = f"WS-{uuid.uuid4().hex[:12]}"
            header = dataclasses.replace(o.header, message_id=str(uuid.uuid4()), correlation_id=ref)
            out.append(dataclasses.replace(o, header=header, order_id=ref))
        return out

    start, failures = threading.Barrier(3), []

    def work() -> None:
        try:
            start.wait()
            run(factory, env, *copies())
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not failures, failures
    with factory() as session:
        rows = list(session.scalars(select(PrescriberRow)))
    per_batch = sum(1 + (o.orderer is not None) for o in orders)
    assert sum(r.message_count for r in rows) == 3 * per_batch and all(r.message_count % 3 == 0 for r in rows)
