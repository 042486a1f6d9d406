"""`hmc-broker bench --embedded`: the broker's pipeline on the embedded default, memory:// and SQLite, in
this one process.

There is no AMQP server, so no pika baseline can run beside it: the baseline figures are null. What it
measures is the pipeline itself (read, validate, store, translate, outbox, commit, publish, ack) without
the network; the latency runs share the interpreter (and its GIL) with the load generator, and an idle
worker polls the in-memory queue every HMC_BATCH_WAIT_MS, so they are an upper bound.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import uuid
from pathlib import Path

from kombu.connection import Connection
from kombu.messaging import Producer

from adapters.amqp.topology import Names, declare
from adapters.amqp.transport import AmqpTransport, topology_settings
from adapters.bench.data import CONFIRMATION_KEY, CUSTOMER, ORDER_KEY, Data, Sample
from adapters.bench.results import Plan, Reporter, Results, RssSeries
from adapters.bench.run import CUSTOMERS
from adapters.bench.stages import stage_costs
from adapters.bench.wire import STALL_S, BenchError, Latencies, Progress
from adapters.bench.workers import proc_status
from broker.bootstrap import store
from broker.config import Settings, parse_customers
from broker.envelope import CONTENT_TYPE, SCHEMA_VERSION_HEADER, Exchange
from broker.runtime import Worker


def _rss_mb() -> float:
    return proc_status(os.getpid(), "VmRSS")


def _logs_to(path: Path) -> None:
    """The worker runs in this process: its log lines (one per message at INFO) go to a file, as a worker
    process's do in the services run, so that they cost the same and stdout stays clean for --json.
    Left alone when the host has configured logging already (a test session)."""
    import logging

    import structlog

    from broker.observability import logs

    if structlog.is_configured():
        return
    logs.configure(Settings.from_env().log_level, "json")
    handler = logging.getLogger().handlers[0]
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(path.open("a", encoding="utf-8"))


class EmbeddedBench:
    def __init__(self, plan: Plan, reporter: Reporter, work_dir: Path) -> None:
        self.plan = plan
        self.reporter = reporter
        self.work_dir = work_dir
        self.run_id = uuid.uuid4().hex[:8]
        self.settings = Settings(
            amqp_url="memory://",
            db_url=f"sqlite:///{work_dir / 'bench.sqlite'}",
            prefix=f"bench{self.run_id}.",
            batch_size=plan.batch_size,
            batch_wait_ms=plan.batch_wait_ms,
            customers=parse_customers(CUSTOMERS),
        )
        self.names = Names(self.settings.prefix)
        self.data = Data(self.run_id)
        self.sessions = store(self.settings)
        self.connection = Connection("memory://")
        declare(self.connection, topology_settings(self.settings))
        self.channel = self.connection.channel()
        self.producer = Producer(self.channel)

    def run(self) -> Results:
        _logs_to(self.work_dir / "broker.log")
        started = time.perf_counter()
        self.data.check()
        r = Results(mode="embedded", plan=self.plan, partitions=1)
        r.run = self.run_id
        r.target = f"memory:// and SQLite in one process ({self.settings.db_url})"
        try:
            costs = stage_costs(self.data)
            r.stage_us, r.stage_floor_us = costs.stages, costs.floor
            orders = self.data.orders(self.plan.messages)
            r.pipeline_msgs_per_s = self.through(
                "customer -> SESAM2 (embedded)", orders, Exchange.CUSTOMER_IN, ORDER_KEY, self.names.sesam2_queue
            )
            r.workers[1] = r.pipeline_msgs_per_s
            r.return_msgs_per_s = self.through(
                "SESAM2 -> customer (embedded)",
                self.data.confirmations(orders),
                Exchange.SESAM2_IN,
                CONFIRMATION_KEY,
                self.names.customer_queue(CUSTOMER),
            )
            r.fixed = self.latency(
                f"latency at {self.plan.rate:g} msg/s", self.plan.latency_messages, rate=self.plan.rate
            )
            r.trickle = self.latency(
                f"latency at {self.plan.trickle_rate:g} msg/s", self.plan.trickle_messages, rate=self.plan.trickle_rate
            )
            r.saturation = self.latency(
                f"latency at saturation (window {self.plan.saturation_window})",
                self.plan.saturation_messages,
                window=self.plan.saturation_window,
            )
            r.drain_s, r.drain_rss = self.backlog(self.plan.backlog)
        finally:
            self.connection.release()
            self.sessions.kw["bind"].dispose()
        r.rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        r.elapsed_s = time.perf_counter() - started
        r.notes += [
            "embedded: no AMQP server, so no raw or naive baseline (null) and no ratio; one worker only",
            "embedded: throughput is messages / wall time of the worker's run (no start-up to exclude)",
            "embedded: latency shares the GIL with the load generator, and an idle worker polls every "
            f"{self.plan.batch_wait_ms} ms",
            "embedded: RSS is this whole process's, the in-memory queues and the bench included",
        ]
        return r

    # ---------------------------------------------------------------- phases

    def through(self, label: str, samples: list[Sample], exchange: Exchange, key: str, output: str) -> float:
        progress = self.reporter.phase(label, len(samples) * 2)
        for i, sample in enumerate(samples, 1):
            self._publish(exchange, key, sample)
            if i % 500 == 0:
                progress(i)
        elapsed = self._run_worker(len(samples), lambda done: progress(len(samples) + done))
        arrived = self._depth(output)
        self.channel.queue_purge(output)
        if arrived != len(samples):
            raise BenchError(f"{label}: {arrived} of {len(samples)} arrived on {output}")
        return len(samples) / elapsed

    def latency(self, label: str, count: int, *, rate: float | None = None, window: int | None = None) -> Latencies:
        progress = self.reporter.phase(label, count)
        samples = self.data.orders(count)
        worker = self._worker()
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        sent: dict[str, float] = {}
        latencies: list[float] = []
        published = 0
        start = last = time.perf_counter()
        deadline = start + max(120.0, count / 20)
        try:
            while len(latencies) < count:
                now = time.perf_counter()
                if now > deadline:
                    raise BenchError(f"{label}: timed out after {len(latencies)} of {count}")
                due = int((now - start) * rate) + 1 if rate is not None else published + (window or 0) - len(sent)
                while published < min(due, count):
                    sample = samples[published]
                    sent[sample.order_id] = time.perf_counter()
                    self._publish(Exchange.CUSTOMER_IN, ORDER_KEY, sample)
                    published += 1
                while (message := self.channel.basic_get(self.names.sesam2_queue, no_ack=True)) is not None:
                    at = sent.pop(message.properties.get("correlation_id", ""), None)
                    if at is not None:
                        last = time.perf_counter()
                        latencies.append(last - at)
                progress(len(latencies))
                time.sleep(0.0005)
        finally:
            worker.stop.set()
            thread.join(60)
        return Latencies(latencies, last - start, f"{rate:g} msg/s" if rate is not None else f"window {window}")

    def backlog(self, count: int) -> tuple[float, RssSeries]:
        progress = self.reporter.phase(f"backlog of {count:,} orders (embedded)", count * 2)
        for i, sample in enumerate(self.data.orders(count), 1):
            self._publish(Exchange.CUSTOMER_IN, ORDER_KEY, sample)
            if i % 500 == 0:
                progress(i)
        rss = RssSeries()

        def sampled(done: int) -> None:
            progress(count + done)
            if not rss.samples or done - rss.samples[-1][0] >= max(count // 50, 1):
                rss.samples.append((done, _rss_mb()))

        elapsed = self._run_worker(count, sampled)
        rss.samples.append((count, _rss_mb()))
        self.channel.queue_purge(self.names.sesam2_queue)  # SESAM2 takes them
        return elapsed, rss

    # ---------------------------------------------------------------- helpers

    def _worker(self) -> Worker:
        return Worker(self.settings, AmqpTransport(self.settings, declare_topology=False), self.sessions)

    def _run_worker(self, count: int, progress: Progress) -> float:
        worker = self._worker()

        moved, seen = time.monotonic(), 0

        def done() -> bool:
            nonlocal moved, seen
            progress(worker.counters.messages)
            if worker.counters.messages != seen:
                moved, seen = time.monotonic(), worker.counters.messages
            return worker.counters.messages >= count or time.monotonic() - moved > STALL_S

        started = time.perf_counter()
        worker.run(until=done)
        if worker.counters.messages < count:
            raise BenchError(
                f"stalled: the worker took {worker.counters.messages} of {count}, none for {STALL_S:.0f} s"
            )
        return time.perf_counter() - started

    def _publish(self, exchange: Exchange, key: str, sample: Sample) -> None:
        self.producer.publish(
            sample.body,
            exchange=self.names.exchange(exchange),
            routing_key=key,
            content_type=CONTENT_TYPE,
            content_encoding="binary",
            message_id=sample.message_id,
            correlation_id=sample.order_id,
            type=sample.message_type,
            delivery_mode=2,
            timestamp=int(time.time()),
            headers={SCHEMA_VERSION_HEADER: "1.0"},
        )

    def _depth(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue=queue, passive=True).message_count)
