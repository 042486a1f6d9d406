"""The pieces the fault tests (tests/e2e/test_faults.py) and the soak (`hmc-broker soak`) share: realistic traffic with
orders of several messages, a confirmed pika feed and a pika collector that both survive connection loss,
broker workers as child processes, and what the store parked.

pika only, never the broker's own AMQP code: the broker is checked from outside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pika
import pika.exceptions

from adapters.amqp.topology import Names
from adapters.bench.workers import Child, _clean_env
from adapters.harness import envelopes, wire
from adapters.harness.checker import Arrival, Sent, causation
from adapters.harness.envelopes import Addressed
from adapters.harness.generator import Generator
from broker.model.codes import Side
from broker.store import queries
from broker.store.db import make_engine, sessions

CUSTOMER = "1001"
CUSTOMERS_SPEC = f"{CUSTOMER}:Region Test::"
# What a connection closed by the server raises in pika.
LOST: tuple[type[Exception], ...] = (pika.exceptions.AMQPError, OSError)
RETRIED: tuple[type[Exception], ...] = (*LOST, wire.Nacked)  # a publish that RabbitMQ did not take


def orders(count: int, steps: int, names: Names, seed: int = 9) -> Iterator[tuple[Addressed, Sent]]:
    """`count` orders of `steps` messages each (one correlation id per order), interleaved as live traffic
    is: step 0 of a few orders, then their step 1, ... Each message is a realistic CustomerOrder."""
    generator = Generator(seed, customers=(CUSTOMER,))
    run = f"{seed:04d}{int(time.time() * 1000) % 10**9:09d}"
    group = 10
    for first in range(0, count, group):
        for _step in range(steps):
            for n in range(first, min(first + group, count)):
                message = generator.customer_order(CUSTOMER)
                order = f"FAULT-{run}-{n:05d}"
                header = dataclasses.replace(message.header, correlation_id=order)
                message = dataclasses.replace(message, header=header)
                yield envelopes.address(Side.CUSTOMER, message, names), Sent(header.message_id, order)


class Feed:
    """Publishes with confirms, one message at a time; on a lost connection or a nack (RabbitMQ stopping) it
    reconnects and publishes the unconfirmed message again (same id: the broker de-duplicates it)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._publisher: wire.Publisher | None = None

    def publish(self, message: Addressed, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self._publisher is None:
                    self._publisher = wire.Publisher(wire.blocking(self.url))
                self._publisher.publish(message)
                return
            except RETRIED:
                self._publisher = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def publish_all(self, messages: Sequence[Addressed], queues: Sequence[str], timeout_s: float = 60.0) -> None:
        """A backlog at once: published without waiting for each confirm, then proven by the queues' message
        counts (nobody consumes them yet), which is what a confirm would have told."""
        connection = wire.blocking(self.url)
        try:
            channel = connection.channel()
            before = sum(channel.queue_declare(q, passive=True).method.message_count for q in queues)
            for m in messages:
                channel.basic_publish(m.exchange, m.routing_key, m.body, pika.BasicProperties(**m.properties))
            deadline = time.monotonic() + timeout_s
            while (
                count := sum(channel.queue_declare(q, passive=True).method.message_count for q in queues)
            ) < before + len(messages):
                if time.monotonic() > deadline:
                    raise wire.WireError(
                        f"only {count - before} of {len(messages)} published messages reached {queues}"
                    )
                time.sleep(0.2)
        finally:
            connection.close()

    def close(self) -> None:
        connection = self._publisher.channel.connection if self._publisher is not None else None
        if connection is not None and connection.is_open:
            with contextlib.suppress(*LOST):
                connection.close()


class Collector:
    """Consumes a queue in a thread as SESAM2 would (manual acks), reconnecting when the connection is lost.

    A message the collector itself saw but could not acknowledge comes back marked redelivered; that is not
    the broker's repeat, so it is recorded once."""

    def __init__(self, url: str, queue: str) -> None:
        self.url = url
        self.queue = queue
        self.arrivals: list[Arrival] = []
        self.times: list[float] = []  # monotonic arrival time of each entry in arrivals
        self._seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"collect {queue}", daemon=True)
        self._thread.start()

    def count(self) -> int:
        return len(self.arrivals)

    def wait(self, count: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.count() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def stop(self) -> list[Arrival]:
        self._stop.set()
        self._thread.join(30)
        return list(self.arrivals)

    def _run(self) -> None:
        while not self._stop.is_set():
            connection = None
            try:
                connection = wire.blocking(self.url)
                channel = connection.channel()
                channel.basic_qos(prefetch_count=200)
                for method, props, body in channel.consume(self.queue, inactivity_timeout=0.2):
                    if self._stop.is_set():
                        break
                    if method is None:
                        continue
                    message_id = props.message_id or ""
                    if not (method.redelivered and message_id in self._seen):
                        self._seen.add(message_id)
                        self.arrivals.append(Arrival(message_id, causation(body)))
                        self.times.append(time.monotonic())
                    channel.basic_ack(method.delivery_tag)
            except LOST:
                time.sleep(0.5)
            finally:
                if connection is not None and connection.is_open:
                    with contextlib.suppress(*LOST):
                        connection.close()


def worker_env(amqp_url: str, db_url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The environment of a worker of the fault tests and the soak: a short confirm timeout (and so a short
    relay grace, 2 x timeout + 5 s) keeps recovery after a crash quick."""
    return {
        "HMC_AMQP_URL": amqp_url,
        "HMC_DB_URL": db_url,
        "HMC_PREFIX": prefix,
        "HMC_CUSTOMERS": CUSTOMERS_SPEC,
        "HMC_BATCH_SIZE": "50",
        "HMC_HTTP_PORT": "0",
        "HMC_CONFIRM_TIMEOUT_S": "3",
        "HMC_STANDBY_DELAY_S": "0.5",
        **extra,
    }


class WorkerPool:
    """`count` workers sharing the partitions; each can be stopped, killed and started again."""

    def __init__(self, env: Mapping[str, str], count: int, log_dir: Path, argv: Sequence[str]) -> None:
        self.env, self.count, self.log_dir, self.argv = dict(env), count, log_dir, list(argv)
        self.children: list[Child] = [self._start(i, 0) for i in range(count)]
        self.restarts = 0
        self._restarting: set[int] = set()

    def _start(self, index: int, generation: int) -> Child:
        env = {**_clean_env(), **self.env, "HMC_WORKERS": str(self.count), "HMC_WORKER_INDEX": str(index)}
        if (port := int(self.env.get("HMC_HTTP_PORT", "0"))) != 0:
            env["HMC_HTTP_PORT"] = str(port + index)  # one port each: worker i serves /metrics on port + i
        return Child(f"worker{index}-{generation}", self.argv, env, self.log_dir)

    def kill(self, index: int) -> None:
        """kill -9: no flush, no goodbye."""
        child = self.children[index]
        child.process.kill()
        child.process.wait()

    def freeze(self, index: int) -> None:
        """SIGSTOP: a hung process, a paused VM. Its sockets stay open but it sends nothing, heartbeats included."""
        self.children[index].process.send_signal(signal.SIGSTOP)

    def thaw(self, index: int) -> None:
        self.children[index].process.send_signal(signal.SIGCONT)

    def restart(self, index: int, *, kill: bool = False) -> None:
        """As a supervisor (systemd, compose) does: stop (SIGTERM) or kill -9, then start again."""
        self._restarting.add(index)
        try:
            if kill:
                self.kill(index)
            self.children[index].stop()
            self.restarts += 1
            self.children[index] = self._start(index, self.restarts)
        finally:
            self._restarting.discard(index)

    def crashed(self) -> list[tuple[int, int | None, str]]:
        """Workers that ended by themselves (index, exit code, end of log): each is a bug to look into."""
        return [
            (i, c.process.returncode, c.tail(3))
            for i, c in enumerate(self.children)
            if i not in self._restarting and c.process.poll() is not None
        ]

    def alive(self) -> bool:
        return all(c.process.poll() is None for c in self.children)

    def rss_mb(self) -> list[float]:
        return [c.rss_mb() for c in self.children]

    def stop(self) -> list[int | None]:
        return [c.stop() for c in self.children]

    def tails(self) -> str:
        return "\n".join(f"--- {c.name} ({c.log_path})\n{c.tail()}" for c in self.children)


def consuming(url: str, queues: Sequence[str], timeout_s: float = 60.0) -> bool:
    """Whether every queue has a consumer within `timeout_s` (the workers are up)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            connection = wire.blocking(url)
            try:
                channel = connection.channel()
                if all(channel.queue_declare(q, passive=True).method.consumer_count > 0 for q in queues):
                    return True
            finally:
                connection.close()
        except LOST:
            pass
        time.sleep(0.3)
    return False


def parked(db_url: str) -> dict[str, str]:
    """Incoming message id -> reason, for messages the store parked or rejected (a fresh connection)."""
    engine = make_engine(db_url)
    try:
        with sessions(engine)() as session:
            failed = queries.failed(session)
    finally:
        engine.dispose()
    return {message_id: f"{status}: {error or 'no reason recorded'}" for message_id, status, error in failed}


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_mb: tuple[float, ...]
    sent: int
    arrived: int
