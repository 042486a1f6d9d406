"""The bench against the machine's RabbitMQ and PostgreSQL: every figure of one run, side by side.

Phases, in this order, all under a prefix and in a database of this run's own (both removed at the end):

1. raw: N messages of 2 KB preloaded on a queue; the raw pass-through started; rate of arrival on its
   output queue.
2. naive: the same with the hand-written loop.
3. broker, customer -> SESAM2: N orders preloaded on hmc.customer.in; one worker started; rate of
   arrival on sesam2.in (each arrival there is a publish the worker had confirmed).
4. broker, SESAM2 -> customer: N OrderConfirmations of those orders preloaded on hmc.sesam2.in; one
   worker; rate of arrival on the customer's queue.
5. latency with that worker running: orders published at a fixed rate, then with a full window in
   flight (saturation); each timed from publish to its translation's arrival on sesam2.in.
6. backlog: K orders waiting while the SESAM2 side (worker and SESAM2's consumer) is down; both start;
   time until SESAM2 has consumed all K. The worker's RSS is sampled along the way.
7. scaling: N orders through 2 and 4 workers (consistent-hash partitions by order).

Every rate is taken over the middle of its run (10% to 90% of the messages arrived), so that process
start-up and the tail are excluded the same way for the baselines and for the broker.
"""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from sqlalchemy import create_engine, make_url, text

from adapters.amqp.topology import Names, plan
from adapters.amqp.transport import declare_topology, topology_settings
from adapters.bench import wire
from adapters.bench.data import CONFIRMATION_KEY, CUSTOMER, ORDER_KEY, Data, Sample
from adapters.bench.results import Plan, Reporter, Results, RssSeries
from adapters.bench.stages import stage_costs
from adapters.bench.wire import BenchError
from adapters.bench.workers import Child, Workers, profiler, relay
from broker.config import Settings, parse_customers, safe_url
from broker.envelope import Exchange
from broker.model.codes import Side
from broker.store.db import make_engine, upgrade

T = TypeVar("T")
CUSTOMERS = "1001:Region Skåne::invoice,1002:Region Halland"


def reachable(url: str, default_port: int) -> str | None:
    """None when something listens at the URL's host and port, else why not."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return None
    except OSError as e:
        return f"nothing answers at {host}:{port} ({e})"


class ServicesBench:
    def __init__(
        self,
        plan_: Plan,
        amqp_url: str,
        db_url: str,
        reporter: Reporter,
        work_dir: Path,
        profile_dir: Path | None = None,
        worker_argv: list[str] | None = None,
    ) -> None:
        self.plan = plan_
        self.worker_argv = worker_argv
        self.amqp_url = amqp_url
        self.server_url = db_url
        self.reporter = reporter
        self.work_dir = work_dir
        self.profile_dir = profile_dir
        self.run_id = uuid.uuid4().hex[:8]
        self.prefix = f"bench{self.run_id}."
        self.database = f"hmc_bench_{self.run_id}"
        self.db_url = make_url(db_url).set(database=self.database).render_as_string(hide_password=False)
        self.partitions = max(plan_.workers)
        self.settings = Settings(
            amqp_url=amqp_url,
            db_url=self.db_url,
            prefix=self.prefix,
            partitions=self.partitions,
            batch_size=plan_.batch_size,
            batch_wait_ms=plan_.batch_wait_ms,
            customers=parse_customers(CUSTOMERS),
        )
        self.names = Names(self.prefix)
        self.data = Data(self.run_id)
        self.running: list[Workers | Child] = []
        self._profilers: list[subprocess.Popen[bytes]] = []
        self._created_db = False
        self.notes: list[str] = []
        self._baseline_queues = [
            f"{self.prefix}bench.{kind}.{end}" for kind in ("raw", "naive") for end in ("in", "out")
        ]

    # ---------------------------------------------------------------- the run

    def run(self) -> Results:
        started = time.perf_counter()
        r = Results(mode="services", plan=self.plan, partitions=self.partitions)
        r.run = self.run_id
        r.target = f"RabbitMQ {safe_url(self.amqp_url)}, PostgreSQL {safe_url(self.db_url)}"
        try:
            self.setup()
            costs = stage_costs(self.data)
            r.stage_us, r.stage_floor_us = costs.stages, costs.floor
            plan_ = self.plan
            r.baseline_msgs_per_s = self._retry("raw", lambda: self.baseline("raw", plan_.baseline_messages))
            r.naive_msgs_per_s = self._retry("naive", lambda: self.baseline("naive", plan_.naive_messages))
            orders, r.pipeline_msgs_per_s, peak, r.worker_cpu_us = self._retry("forward", lambda: self.forward(1))
            r.workers[1] = r.pipeline_msgs_per_s
            r.return_msgs_per_s, peak2 = self._retry("return", lambda: self.backward(orders, r))
            r.drain_s, r.drain_rss, peak3 = self._retry("backlog", self.backlog)
            r.rss_mb = max(peak, peak2, peak3)
            for count in plan_.workers:
                if count != 1:
                    _, r.workers[count], _, _ = self._retry(f"{count} workers", functools.partial(self.forward, count))
            if plan_.soak:
                r.soak_rss, peak4 = self._retry("soak", lambda: self.soak(plan_.soak))
                r.rss_mb = max(r.rss_mb, peak4)
            r.store = self.store_counts()
        finally:
            self.cleanup()
        r.elapsed_s = time.perf_counter() - started
        r.notes.extend(self.notes)
        if self.worker_argv:
            r.notes.append(f"workers ran as: {' '.join(self.worker_argv)}")
        r.notes.append(
            f"{os.cpu_count()} CPUs shared by RabbitMQ, PostgreSQL, the measured process and the bench: "
            "compare the ratios, not the absolute figures of different runs"
        )
        return r

    def setup(self) -> None:
        for what, url, port in (("RabbitMQ", self.amqp_url, 5672), ("PostgreSQL", self.server_url, 5432)):
            problem = reachable(url, port)
            if problem:
                raise BenchError(f"{what}: {problem}; start it, or run `hmc-broker bench --embedded`")
        admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        finally:
            admin.dispose()
        self._created_db = True
        engine = make_engine(self.db_url)
        try:
            upgrade(engine)  # once here, not in N workers at once (they find it done)
        finally:
            engine.dispose()
        declare_topology(self.settings)
        connection = wire.connect(self.amqp_url)
        try:
            channel = connection.channel()
            for q in self._baseline_queues:
                wire.declare_queue(channel, q)
        finally:
            wire.close(connection)
        self.data.check()

    def cleanup(self) -> None:
        for thing in self.running:
            thing.stop()
        self.running.clear()
        for p in self._profilers:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        topology = plan(topology_settings(self.settings))
        names = [q.name for q in topology.queues] + self._baseline_queues
        exchanges = [e.name for e in topology.exchanges]
        if any(not n.startswith(self.prefix) for n in names + exchanges):
            raise BenchError("refusing to delete names outside the bench's prefix")
        for attempt in range(3):
            if reachable(self.amqp_url, 5672) is not None:
                break
            try:
                wire.delete(self.amqp_url, names, exchanges)
                break
            except wire.LOST:
                if attempt == 2:
                    self.notes.append(f"could not delete the queues and exchanges of prefix {self.prefix!r}")
        if self._created_db:
            admin = create_engine(self.server_url, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            finally:
                admin.dispose()

    # ---------------------------------------------------------------- phases

    def baseline(self, kind: str, count: int) -> float:
        source, target = f"{self.prefix}bench.{kind}.in", f"{self.prefix}bench.{kind}.out"
        progress = self._phase("raw pika pass-through" if kind == "raw" else "naive hand-written loop", count)
        wire.preload(self.amqp_url, "", source, self.data.orders(count), [source], progress.preload)
        config: dict[str, object] = {"url": self.amqp_url, "source": source, "target": target}
        if kind == "raw":
            config["window"] = self.plan.window
        else:
            libpq = make_url(self.db_url).set(drivername="postgresql").render_as_string(hide_password=False)
            config.update(db=libpq, prefetch=self.plan.batch_size)
        with self._started(relay(kind, config, self.work_dir)) as child:
            curve = wire.watch(self.amqp_url, [target], count, alive=child.check, progress=progress.measure)
        wire.purge(self.amqp_url, [source, target])
        return curve.rate(count)

    def forward(self, workers: int) -> tuple[list[Sample], float, float, float]:
        """N new orders through `workers` workers: the orders, the rate customer -> SESAM2, the peak RSS, and the
        workers' CPU microseconds per order over the same middle of the run as the rate (their own CPU time)."""
        orders = self.data.orders(self.plan.messages)
        label = f"customer -> SESAM2, {workers} worker{'s' if workers > 1 else ''}"
        progress = self._phase(label, len(orders))
        self._preload_orders(orders, progress.preload)
        with self._workers(workers, f"forward{workers}") as running:
            cpu = _CpuBetween(running, len(orders), progress.measure)
            curve = wire.watch(self.amqp_url, [self.names.sesam2_queue], len(orders), alive=running.check, progress=cpu)
            self._expect(self.names.sesam2_queue, "CustomerOrder")
        wire.purge(self.amqp_url, [self.names.sesam2_queue])
        return orders, curve.rate(len(orders)), running.peak_mb, cpu.us_per_message()

    def backward(self, orders: list[Sample], r: Results) -> tuple[float, float]:
        """Rate of SESAM2 -> customer, one worker; then, with the same worker, latency (into `r`)."""
        confirmations = self.data.confirmations(orders)
        progress = self._phase("SESAM2 -> customer, 1 worker", len(confirmations))
        inbound = self.names.inbound_queues(Side.SESAM2, self.partitions)
        wire.preload(
            self.amqp_url,
            self.names.exchange(Exchange.SESAM2_IN),
            CONFIRMATION_KEY,
            confirmations,
            inbound,
            progress.preload,
        )
        customer_queue = self.names.customer_queue(CUSTOMER)
        with self._workers(1, "return") as running:
            curve = wire.watch(
                self.amqp_url, [customer_queue], len(confirmations), alive=running.check, progress=progress.measure
            )
            self._expect(customer_queue, "OrderConfirmation")
            wire.purge(self.amqp_url, [customer_queue])
            running.wait_consuming(self.amqp_url, self.names.inbound_queues(Side.CUSTOMER, self.partitions))
            r.fixed = self._latency(
                f"latency at {self.plan.rate:g} msg/s", self.plan.latency_messages, rate=self.plan.rate
            )
            r.trickle = self._latency(
                f"latency at {self.plan.trickle_rate:g} msg/s",
                self.plan.trickle_messages,
                rate=self.plan.trickle_rate,
            )
            r.saturation = self._latency(
                f"latency at saturation (window {self.plan.saturation_window})",
                self.plan.saturation_messages,
                window=self.plan.saturation_window,
            )
            running.check()
        return curve.rate(len(confirmations)), running.peak_mb

    def _latency(
        self, label: str, count: int, *, rate: float | None = None, window: int | None = None
    ) -> wire.Latencies:
        progress = self._phase(label, count)
        progress.preload(count)  # nothing to preload: published live
        return wire.LatencyRun(
            self.amqp_url,
            self.names.exchange(Exchange.CUSTOMER_IN),
            ORDER_KEY,
            self.data.orders(count),
            self.names.sesam2_queue,
            rate=rate,
            window=window,
            progress=progress.measure,
        ).run()

    def backlog(self) -> tuple[float, RssSeries, float]:
        """K orders wait while the worker and SESAM2 are down; both start; seconds until SESAM2 has all."""
        count = self.plan.backlog
        progress = self._phase(f"backlog of {count:,} orders", count)
        self._preload_orders(self.data.orders(count), progress.preload)
        rss = RssSeries()
        started = time.perf_counter()
        with self._workers(1, "backlog") as running:
            received = self._consume(count, running, rss, progress.measure)
            drained = time.perf_counter() - started
            if received < count:
                raise BenchError(f"backlog: SESAM2 received {received} of {count}")
        return drained, rss, running.peak_mb

    def soak(self, count: int, chunk: int = 20_000) -> tuple[RssSeries, float]:
        """`count` orders through one worker in chunks (published while it runs), RSS after each chunk."""
        progress = self._phase(f"soak of {count:,} orders", count)
        progress.preload(count)
        series = RssSeries()
        done = 0
        with self._workers(1, "soak") as running:
            while done < count:
                n = min(chunk, count - done)
                exchange = self.names.exchange(Exchange.CUSTOMER_IN)
                wire.preload(self.amqp_url, exchange, ORDER_KEY, self.data.orders(n), None)
                self._consume(n, running, RssSeries(), _offset(progress.measure, done))
                done += n
                series.samples.append((done, running.rss_mb()))
        return series, running.stop()

    # ---------------------------------------------------------------- helpers

    def _retry(self, label: str, phase: Callable[[], T], attempts: int = 4) -> T:
        """Run a phase; when RabbitMQ closed connections meanwhile (a restart, another test suite's
        `rabbitmqctl close_all_connections`), its figures are disturbed: clear the queues and run it again."""
        for attempt in range(1, attempts + 1):
            try:
                return phase()
            except wire.LOST as e:
                if attempt == attempts:
                    raise BenchError(f"{label}: AMQP connections closed by the server {attempts} times: {e}") from e
                self.notes.append(f"{label}: AMQP connection closed by the server ({e}); the phase was run again")
            for running in list(self.running):
                running.stop()
                self.running.remove(running)
            self._purge_all()
        raise AssertionError("unreachable")

    def _purge_all(self) -> None:
        topology = plan(topology_settings(self.settings))
        wire.purge(self.amqp_url, [q.name for q in topology.queues] + self._baseline_queues)

    def _preload_orders(self, orders: list[Sample], progress: wire.Progress) -> None:
        wire.preload(
            self.amqp_url,
            self.names.exchange(Exchange.CUSTOMER_IN),
            ORDER_KEY,
            orders,
            self.names.inbound_queues(Side.CUSTOMER, self.partitions),
            progress,
        )

    def _consume(self, count: int, running: Workers, rss: RssSeries, progress: wire.Progress) -> int:
        """SESAM2: consume sesam2.in until `count` arrived; RSS of the worker sampled twice a second."""
        connection = wire.connect(self.amqp_url)
        received = 0

        def take(_channel: object, _method: object, _props: object, _body: bytes) -> None:
            nonlocal received
            received += 1

        try:
            channel = connection.channel()
            channel.basic_consume(self.names.sesam2_queue, take, auto_ack=True)
            last_sample = 0.0
            moved, seen = time.monotonic(), 0
            while received < count and time.monotonic() - moved < wire.STALL_S:
                connection.process_data_events(time_limit=0.05)
                if received != seen:
                    moved, seen = time.monotonic(), received
                if time.monotonic() - last_sample >= 0.5:
                    running.check()
                    rss.samples.append((received, running.rss_mb()))
                    progress(received)
                    last_sample = time.monotonic()
            rss.samples.append((received, running.rss_mb()))
            progress(received)
        finally:
            wire.close(connection)
        return received

    def _expect(self, queue: str, message_type: str) -> None:
        """What arrived is what should have: the translated type, for an order of this run."""
        for seen_type, correlation in wire.peek_types(self.amqp_url, queue, 3):
            if seen_type != message_type or not (correlation or "").startswith(f"B{self.run_id}-"):
                raise BenchError(f"{queue}: expected {message_type} of this run, found {seen_type} ({correlation})")

    @contextmanager
    def _started(self, child: Child) -> Iterator[Child]:
        self.running.append(child)
        try:
            yield child
        finally:
            child.stop()
            self.running.remove(child)

    @contextmanager
    def _workers(self, count: int, label: str) -> Iterator[Workers]:
        env = {
            "HMC_AMQP_URL": self.amqp_url,
            "HMC_DB_URL": self.db_url,
            "HMC_PREFIX": self.prefix,
            "HMC_CUSTOMERS": CUSTOMERS,
            "HMC_PARTITIONS": str(self.partitions),
            "HMC_BATCH_SIZE": str(self.plan.batch_size),
            "HMC_BATCH_WAIT_MS": str(self.plan.batch_wait_ms),
            # Each worker keeps to its own partitions for the whole run: no standby take-over of a
            # partition whose worker started a little later than the others.
            "HMC_STANDBY_DELAY_S": "86400",
            "HMC_PII_KEY": f"bench-{self.run_id}",
        }
        running = Workers(env, count, self.work_dir, label, self.worker_argv)
        self.running.append(running)
        if self.profile_dir is not None:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            for child in running.children:
                spy = profiler(child, self.profile_dir / f"{child.name}.txt")
                if spy is not None:
                    self._profilers.append(spy)
        try:
            yield running
        finally:
            running.stop()
            self.running.remove(running)

    def _phase(self, label: str, count: int) -> _Phase:
        return _Phase(self.reporter.phase(label, count * 2), count)

    def store_counts(self) -> dict[str, int]:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT status, count(*) FROM messages GROUP BY status ORDER BY status"))
                return {str(status): int(n) for status, n in rows}
        finally:
            engine.dispose()


class _Phase:
    """One progress bar for a phase: its first half is preloading, its second what is measured."""

    def __init__(self, progress: Callable[[int], None], count: int) -> None:
        self._progress, self._count = progress, count

    def preload(self, done: int) -> None:
        self._progress(done)

    def measure(self, done: int) -> None:
        self._progress(self._count + done)


def _offset(progress: wire.Progress, base: int) -> wire.Progress:
    return lambda done: progress(base + done)


class _CpuBetween:
    """The workers' CPU time between 10% and 90% of the messages arrived (the window Curve.rate uses)."""

    def __init__(self, workers: Workers, total: int, progress: wire.Progress, low: float = 0.1, high: float = 0.9):
        self._workers, self._total, self._progress = workers, total, progress
        self._marks = [total * low, total * high]
        self._cpu: list[tuple[int, float]] = []

    def __call__(self, count: int) -> None:
        self._progress(count)
        while self._marks and count >= self._marks[0]:
            self._marks.pop(0)
            self._cpu.append((count, self._workers.cpu_seconds()))

    def us_per_message(self) -> float:
        if len(self._cpu) < 2 or self._cpu[1][0] <= self._cpu[0][0]:
            return 0.0
        (c0, s0), (c1, s1) = self._cpu[0], self._cpu[1]
        return (s1 - s0) / (c1 - c0) * 1e6
