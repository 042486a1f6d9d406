"""A rolling upgrade under load: 2,000 messages flowing (a backlog and a steady feed), the next release's
additive migration applied to the store while the workers run, then every worker restarted one by one
(SIGTERM, then started again, as systemd or compose does): nothing lost, duplicated under another id or out of
order, and the workers of this version run on the newer schema with a warning instead of refusing it.

Each worker consumes every partition (one active, the others standing by: single active consumer), so while
one restarts the other takes its partition over; a graceful stop finishes its batch and flushes its outbox
first. Run with `pytest -m rolling -s` (the figures are printed; about 40 s).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator

import pytest

from adapters.amqp.topology import TopologySettings
from adapters.harness.cleanup import delete_topology
from broker.model.codes import Side
from broker.store.db import make_engine
from tests.support import next_release, services
from tests.support.fault_stream import STEPS, Stream, fresh_log_dir
from tests.support.faults import PARTITIONS, consumers

pytestmark = [pytest.mark.rolling, pytest.mark.services]

BACKLOG_ORDERS, FED_ORDERS = 100, 300  # 500 waiting when the workers start, 1,500 fed while they restart
FEED_PER_S = 60.0  # 25 s of feed: a roll took 15 s on a busy 2-core machine


@pytest.fixture
def rolling_db() -> Iterator[str]:
    with services.own_database(services.require_postgres(), "hmc_rolling_") as url:
        yield url


def test_every_worker_restarted_one_by_one_under_load_on_a_schema_one_migration_ahead(rolling_db: str) -> None:
    logging.getLogger("pika").setLevel(logging.WARNING)
    rabbit = services.require_rabbitmq()
    prefix = f"r{int(time.time() * 1000) % 10**8}."
    stream = Stream(
        rabbit,
        rolling_db,
        prefix,
        fresh_log_dir("rolling_restart"),
        backlog_orders=BACKLOG_ORDERS,
        fed_orders=FED_ORDERS,
    )
    try:
        feeding = stream.trickle(FEED_PER_S)
        assert len(stream.sent) == (BACKLOG_ORDERS + FED_ORDERS) * STEPS == 2000
        at_start = stream.midstream(0.1, 0.2)
        engine = make_engine(rolling_db)
        try:
            next_release.migrate_ahead(engine)  # the next release's `hmc-broker db upgrade`, before its workers
        finally:
            engine.dispose()
        rolled_at = time.monotonic()
        queues = stream.names.inbound_queues(Side.CUSTOMER, PARTITIONS)
        restarts = []
        for index in range(stream.pool.count):
            began = time.monotonic()
            stream.pool.restart(index)  # SIGTERM, wait for it to end, start it again
            # The next only once this one consumes every partition again: never both away at once.
            assert _every_worker_consumes(rabbit, queues, stream.pool.count), stream.pool.tails()
            restarts.append(round(time.monotonic() - began, 1))
        roll_s = time.monotonic() - rolled_at
        assert feeding.is_alive(), f"the feed ended before the roll did ({roll_s:.1f} s, {restarts}): not under load"
        feeding.join(60)
        report = stream.finish("rolling restart of every worker, schema one migration ahead", rolled_at, at_start)
        after = [rolled_at, *(t for t in stream.collector.times if t >= rolled_at)]
        pause = max(b - a for a, b in itertools.pairwise(after))
        print(
            f"ROLL: {stream.pool.count} workers restarted one by one in {roll_s:.1f} s (each until consuming "
            f"again: {restarts} s); longest pause in arrivals at sesam2.in during and after it: {pause:.1f} s"
        )
        assert report.lost == 0 and report.duplicates_other_id == 0 and report.out_of_order == 0
        warned = [c.name for c in stream.pool.children if next_release.REVISION in c.log_path.read_text()]
        assert len(warned) == stream.pool.count, f"every restarted worker warns of the newer schema: {warned}"
    finally:
        stream.close()
        delete_topology(rabbit, TopologySettings(prefix=prefix, partitions=PARTITIONS, customers=("1001",)))


def _every_worker_consumes(url: str, queues: list[str], workers: int, timeout_s: float = 60.0) -> bool:
    """Each queue has every worker as a consumer (one active, the others waiting): a classic queue counts them
    all (a quorum queue with a single active consumer would count only the active one)."""
    deadline = time.monotonic() + timeout_s
    while min(consumers(url, q) for q in queues) < workers:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True
