"""A stream of 2,000 customer orders in flight through two broker workers (subprocesses), and the figures of a
fault injected into it: the fault tests' one measurement (tests/e2e/test_faults.py on the machine's services,
tests/e2e/test_cluster_faults.py on a RabbitMQ cluster of the test's own).

2,000 messages (400 orders of 5) are published with confirms before the workers start, so all are in flight;
the test injects its fault once a random share has reached sesam2.in (`midstream`), then `finish` publishes
50 more to show the broker recovered by itself, waits for everything and checks by message id
(adapters/harness/checker.py): lost, duplicated under another id, out of order, and the recovery time.
"""

from __future__ import annotations

import json
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from adapters.amqp.topology import Names
from adapters.amqp.transport import declare_topology
from adapters.harness.checker import Report, Sent, check, forwarded_id
from adapters.harness.envelopes import Addressed
from adapters.harness.reliability import Collector, Feed, WorkerPool, consuming, orders, parked, worker_env
from broker.bootstrap import store
from broker.config import Settings
from broker.model.codes import Side
from tests.support.faults import PARTITIONS

ORDERS, STEPS = 400, 5  # 2,000 messages in flight
PROBE_ORDERS = 10  # 50 messages after the fault: the broker recovered without help
DRAIN_TIMEOUT_S = 120.0


def fresh_log_dir(test_name: str) -> Path:
    """An empty folder for a test's worker logs and figures (/tmp/hmc-faults/<test>): they outlive the test, where
    pytest's tmp_path is rotated away by other runs."""
    log_dir = Path(tempfile.gettempdir()) / "hmc-faults" / test_name
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    return log_dir


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports on this machine."""
    for _ in range(50):
        base = random.randrange(20_000, 40_000)
        sockets = []
        try:
            for offset in range(count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free ports")


class Stream:
    """Two workers on two partitions, 2,000 messages published, sesam2.in collected."""

    def __init__(
        self,
        amqp_url: str,
        db_url: str,
        prefix: str,
        log_dir: Path,
        workers: int = 2,
        http_port: int = 0,
        workers_url: str | None = None,
        start: bool = True,
        backlog_orders: int = ORDERS,
        fed_orders: int = 0,
        **worker_settings: str,
    ) -> None:
        """`amqp_url` is where the topology is declared, published and collected; `workers_url` the workers'
        HMC_AMQP_URL when it differs (a cluster's nodes in another order); `worker_settings` more of the workers' HMC_
        variables (HMC_QUEUE_TYPE=quorum on a cluster). With `start` False the backlog waits for start().
        `fed_orders` more orders kept for trickle() to send while the workers run. Multiples of ten: orders()
        interleaves groups of ten orders, and a part must hold whole orders."""
        assert backlog_orders % 10 == 0 and fed_orders % 10 == 0, "whole groups of orders (see orders())"
        self.amqp_url, self.db_url, self.log_dir = amqp_url, db_url, log_dir
        self.metrics_urls = [f"http://127.0.0.1:{http_port + i}/metrics" for i in range(workers)] if http_port else []
        env = worker_env(
            workers_url or amqp_url,
            db_url,
            prefix,
            HMC_PARTITIONS=str(PARTITIONS),
            HMC_HTTP_PORT=str(http_port),
            **worker_settings,
        )
        # As an operator runs `hmc-broker topology` before the workers.
        declare_topology(Settings.from_env({**env, "HMC_AMQP_URL": amqp_url}))
        store(Settings.from_env(env)).kw["bind"].dispose()  # migrate once, not from two workers at the same time
        self.names = Names(prefix)
        self.feed = Feed(amqp_url)
        self.sent: list[Sent] = []
        started = time.monotonic()
        # One generator for the backlog, what is fed later and the probes: its order ids (OrderId) are unique,
        # where two generators' overlap and the broker rightly rejects the second as order.duplicate.
        planned = list(
            orders(backlog_orders + fed_orders + PROBE_ORDERS, STEPS, self.names, seed=random.randrange(10_000))
        )
        cut, fed_cut = backlog_orders * STEPS, (backlog_orders + fed_orders) * STEPS
        backlog, self._fed, self._probes = planned[:cut], planned[cut:fed_cut], planned[fed_cut:]
        self.feed.publish_all([m for m, _ in backlog], self.names.inbound_queues(Side.CUSTOMER, PARTITIONS))
        self.sent = [s for _, s in backlog]
        self.publish_s = time.monotonic() - started
        self.collector = Collector(amqp_url, self.names.sesam2_queue)
        self._env, self._workers = env, workers
        if start:
            self.start()

    def start(self) -> None:
        """Start the workers (the constructor does, unless told not to) and wait until they consume."""
        self.started = time.monotonic()
        self.pool = WorkerPool(self._env, self._workers, self.log_dir, [sys.executable, "-m", "broker.cli", "run"])
        assert consuming(self.amqp_url, self.names.inbound_queues(Side.CUSTOMER, PARTITIONS)), self.pool.tails()

    def midstream(self, low: float = 0.1, high: float = 0.6) -> int:
        """Wait until a random share of the messages has arrived; how many are still in flight then."""
        threshold = int(len(self.sent) * random.uniform(low, high))
        assert self.collector.wait(threshold, 90), f"only {self.collector.count()} arrived\n{self.pool.tails()}"
        return len(self.sent) - self.collector.count()

    def trickle(self, per_s: float) -> threading.Thread:
        """Publish the `fed_orders` at about `per_s` messages a second from a thread of its own (a feed of its
        own: pika's connections are not shared between threads); join it before finish()."""
        messages, self._fed = self._fed, []
        self.sent.extend(s for _, s in messages)  # in the order published: the checker's order per order

        def publish() -> None:
            feed = Feed(self.amqp_url)
            started = time.monotonic()
            try:
                for n, (message, _) in enumerate(messages):
                    feed.publish(message)
                    time.sleep(max(0.0, started + n / per_s - time.monotonic()))
            finally:
                feed.close()

        thread = threading.Thread(target=publish, name="trickle", daemon=True)
        thread.start()
        return thread

    def finish(self, name: str, restored_at: float, in_flight_at_fault: int, *, expect_ok: bool = True) -> Report:
        """Publish the probes, wait for everything, check, print the figures. With `expect_ok` False (a control
        run that shows what a weaker setting loses) the figures are returned without the assertions."""
        probes = [sent for _, sent in self._probe_messages()]
        expected = {forwarded_id(s.message_id): s.message_id for s in self.sent + probes}
        probe_ids = {forwarded_id(s.message_id) for s in probes}
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while time.monotonic() < deadline:
            missing = set(expected) - {a.message_id for a in self.collector.arrivals}
            if not missing or {expected[i] for i in missing} <= set(parked(self.db_url)):
                break
            time.sleep(1.0)
        time.sleep(1.0)  # late repeats, if any, are counted too
        arrivals = self.collector.stop()
        times = self.collector.times
        first_probe = min((t for a, t in zip(arrivals, times, strict=False) if a.message_id in probe_ids), default=None)
        # Recovery: from the restore to the first message through afterwards (the backlog flows again).
        after = [t for t in times if t >= restored_at]
        recovery = round(after[0] - restored_at, 1) if after else None
        drained = round(max(times) - restored_at, 1) if times else None
        alive = self.pool.alive()
        tails = self.pool.tails()
        self.pool.stop()
        self.feed.close()
        report = check(self.sent + probes, arrivals, parked(self.db_url))
        print(
            f"\nFAULT {name}: in flight {len(self.sent)} (not yet at SESAM2 when the fault hit: {in_flight_at_fault}); "
            f"{report.line()}; recovery {recovery} s (restore to the next message through), all drained "
            f"{drained} s after the restore; publish {self.publish_s:.1f} s, workers ran "
            f"{time.monotonic() - self.started:.0f} s"
        )
        self.figures = {
            "fault": name,
            "in_flight": len(self.sent),
            "at_fault": in_flight_at_fault,
            "recovery_s": recovery,
            "drained_s": drained,
            **report.as_dict(),
        }
        (self.log_dir / "figures.json").write_text(json.dumps(self.figures))  # kept with the worker logs
        if not expect_ok:
            return report
        assert alive, f"a worker died:\n{tails}"
        assert report.ok, f"{report.as_dict()}\n{tails}"
        assert report.delivered + report.parked == report.sent
        assert first_probe is not None, "no message published after the fault arrived: the broker did not recover"
        return report

    def _probe_messages(self) -> Iterator[tuple[Addressed, Sent]]:
        for message, sent in self._probes:
            self.feed.publish(message)
            yield message, sent

    def close(self) -> None:
        self.collector.stop()
        if hasattr(self, "pool"):  # not when the test failed before start()
            self.pool.stop()
        self.feed.close()
