"""The bench's own AMQP client, pika, as a customer system and SESAM2 would use it (never the broker's code).

- `preload` fills a queue before the thing measured starts, so that it alone has the CPU;
- `watch` polls queue depths (cheap: no consumer in the way) and records the arrival curve of the output;
- `LatencyRun` publishes at a fixed rate, or keeps a fixed number of messages in flight (saturation), and
  times each message from its publish to its translation's arrival on the output queue.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pika

from adapters.bench.data import Sample
from broker.envelope import CONTENT_TYPE, SCHEMA_VERSION_HEADER

Progress = Callable[[int], None]  # called with how many are done so far


def _no_progress(_done: int) -> None:
    return None


class BenchError(RuntimeError):
    """The bench cannot go on (a service missing, a process died, a phase timed out): said plainly."""


class ConnectionLost(BenchError):
    """RabbitMQ closed a connection mid-phase (a restart, `rabbitmqctl close_all_connections`): the phase's
    figures are disturbed (redeliveries, republished outbox rows) and the phase is run again."""


# Everything that means "the connection went away" (pika's connection and channel errors included).
LOST = (pika.exceptions.AMQPError, ConnectionLost)
EXIT_CONNECTION_LOST = 75  # how a relay process says that its connection was closed (EX_TEMPFAIL)


def close(connection: Any) -> None:
    """Close unless the server already did."""
    if connection.is_open:
        connection.close()


def connect(url: str) -> Any:
    params = pika.URLParameters(url)
    params.heartbeat = 0  # the bench's connections sit idle while a phase runs; no heartbeat to miss
    return pika.BlockingConnection(params)


def properties(sample: Sample) -> Any:
    """The contract's AMQP properties (README, AMQP contract)."""
    return pika.BasicProperties(
        message_id=sample.message_id,
        correlation_id=sample.order_id,
        type=sample.message_type,
        content_type=CONTENT_TYPE,
        delivery_mode=2,
        timestamp=int(time.time()),
        headers={SCHEMA_VERSION_HEADER: "1.0"},
    )


def depth(channel: Any, queues: Sequence[str]) -> int:
    """Messages ready in these queues (taken but unacknowledged ones are not counted)."""
    return sum(int(channel.queue_declare(q, passive=True).method.message_count) for q in queues)


def consumers(channel: Any, queues: Sequence[str]) -> list[int]:
    return [int(channel.queue_declare(q, passive=True).method.consumer_count) for q in queues]


def declare_queue(channel: Any, name: str) -> None:
    channel.queue_declare(name, durable=True, arguments={"x-queue-type": "classic"})


def preload(
    url: str,
    exchange: str,
    routing_key: str,
    samples: Sequence[Sample],
    queues: Sequence[str] | None,
    progress: Progress = _no_progress,
    timeout_s: float = 300.0,
) -> None:
    """Publish persistently, then wait until `queues` hold all of them (the count is the confirmation);
    with `queues` None, return once published (something consumes them meanwhile)."""
    connection = connect(url)
    try:
        channel = connection.channel()
        before = depth(channel, queues or [])
        for i, sample in enumerate(samples, 1):
            channel.basic_publish(exchange, routing_key, sample.body, properties(sample))
            if i % 500 == 0:
                progress(i)
        if queues is None:
            return
        deadline = time.monotonic() + timeout_s
        while (held := depth(channel, queues) - before) < len(samples):
            if time.monotonic() > deadline:
                raise BenchError(f"only {held} of {len(samples)} messages reached {', '.join(queues)}")
            time.sleep(0.05)
        progress(len(samples))
    finally:
        close(connection)


@dataclass
class Curve:
    """Output depth over time: (seconds, messages arrived), polled."""

    samples: list[tuple[float, int]] = field(default_factory=list)

    def at(self, count: float) -> float:
        """When `count` messages had arrived, interpolated between polls."""
        previous = self.samples[0]
        for t, c in self.samples:
            if c >= count:
                t0, c0 = previous
                return t if c == c0 else t0 + (t - t0) * (count - c0) / (c - c0)
            previous = (t, c)
        raise ValueError(f"never reached {count}")

    def rate(self, total: int, low: float = 0.1, high: float = 0.9) -> float:
        """Messages per second over the middle of the run (10% to 90% arrived): start-up and tail excluded,
        the same way for every path measured, so the figures compare."""
        t_low, t_high = self.at(total * low), self.at(total * high)
        return total * (high - low) / max(t_high - t_low, 1e-6)

    @property
    def done_s(self) -> float:
        return self.samples[-1][0] - self.samples[0][0]


STALL_S = 120.0  # no progress for this long: the phase has failed (everything rejected, a worker hung)


def watch(
    url: str,
    queues: Sequence[str],
    total: int,
    *,
    alive: Callable[[], None] = lambda: None,
    progress: Progress = _no_progress,
    stall_s: float = STALL_S,
    interval_s: float = 0.01,
) -> Curve:
    """Poll the depth of `queues` until `total` more have arrived; `alive()` raises if the producer died."""
    connection = connect(url)
    try:
        channel = connection.channel()
        base = depth(channel, queues)
        start = time.perf_counter()
        curve = Curve([(0.0, 0)])
        last_check = moved = start
        while curve.samples[-1][1] < total:
            now = time.perf_counter()
            if now - moved > stall_s:
                count = curve.samples[-1][1]
                raise BenchError(
                    f"stalled: {count} of {total} arrived on {', '.join(queues)}, none for {stall_s:.0f} s"
                )
            if now - last_check > 0.5:
                alive()
                last_check = now
            time.sleep(interval_s)
            count = depth(channel, queues) - base
            if count != curve.samples[-1][1]:
                moved = time.perf_counter()
            curve.samples.append((time.perf_counter() - start, count))
            progress(count)
        return curve
    finally:
        close(connection)


def peek_types(url: str, queue: str, count: int = 5) -> list[tuple[str | None, str | None]]:
    """(type, correlation_id) of the first few messages of a queue, put back afterwards."""
    connection = connect(url)
    try:
        channel = connection.channel()
        seen, tags = [], []
        for _ in range(count):
            method, props, _body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                break
            seen.append((props.type, props.correlation_id))
            tags.append(method.delivery_tag)
        if tags:
            channel.basic_nack(tags[-1], multiple=True, requeue=True)
        return seen
    finally:
        close(connection)


def purge(url: str, queues: Sequence[str]) -> None:
    connection = connect(url)
    try:
        channel = connection.channel()
        for q in queues:
            channel.queue_purge(q)
    finally:
        close(connection)


def delete(url: str, queues: Sequence[str], exchanges: Sequence[str]) -> None:
    connection = connect(url)
    try:
        channel = connection.channel()
        for q in queues:  # deleting what does not exist is not an error in RabbitMQ
            channel.queue_delete(q)
        for e in exchanges:
            channel.exchange_delete(e)
    finally:
        close(connection)


# ---------------------------------------------------------------- latency


@dataclass
class Latencies:
    """Per-message latencies of one run, publish to arrival on the output queue."""

    seconds: list[float]
    duration_s: float  # first publish to last arrival
    offered: str  # "200 msg/s" or "window 200"

    def percentile(self, p: float) -> float:
        ordered = sorted(self.seconds)
        rank = math.ceil(p / 100 * len(ordered))  # nearest rank
        return ordered[min(len(ordered), max(rank, 1)) - 1] * 1000

    @property
    def msgs_per_s(self) -> float:
        return len(self.seconds) / max(self.duration_s, 1e-6)


class LatencyRun:
    """One pika SelectConnection: a publisher and the output's consumer on one loop, one thread.

    One thread on purpose: with a publisher thread and a consumer thread, the consumer would wait for
    the GIL (5 ms switch interval) and the bench would measure itself.
    Messages are matched by correlation_id, unique per order in the bench's data: the broker does not copy
    incoming headers onto the translated message, and AMQP's timestamp has a resolution of a second.
    """

    def __init__(
        self,
        url: str,
        exchange: str,
        routing_key: str,
        samples: Sequence[Sample],
        output_queue: str,
        *,
        rate: float | None = None,
        window: int | None = None,
        progress: Progress = _no_progress,
        stall_s: float = STALL_S,
    ) -> None:
        if (rate is None) == (window is None):
            raise ValueError("give either a rate (messages per second) or a window (messages in flight)")
        self.url, self.exchange, self.routing_key = url, exchange, routing_key
        self.samples, self.output_queue = list(samples), output_queue
        self.rate, self.window = rate, window
        self.progress, self.stall_s = progress, stall_s
        self._created = time.perf_counter()
        self._sent: dict[str, float] = {}
        self._latencies: list[float] = []
        self._next = 0
        self._start = 0.0
        self._last = 0.0
        self._error: str | None = None
        self._lost: str | None = None
        self._connection: Any = None
        self._publish_channel: Any = None

    def run(self) -> Latencies:
        self._connection = pika.SelectConnection(
            pika.URLParameters(self.url),
            on_open_callback=self._opened,
            on_open_error_callback=lambda _c, e: self._fail(f"cannot connect: {e}"),
            on_close_callback=lambda _c, e: self._closed(e),
        )
        self._connection.ioloop.call_later(1.0, self._watchdog)
        self._connection.ioloop.start()
        if self._lost is not None and self._error is None:
            raise ConnectionLost(f"latency run ({self._offered}): {self._lost}")
        if self._error is not None:
            raise BenchError(f"latency run ({self._offered}): {self._error}")
        return Latencies(self._latencies, self._last - self._start, self._offered)

    @property
    def _offered(self) -> str:
        return f"{self.rate:g} msg/s" if self.rate is not None else f"window {self.window}"

    def _opened(self, connection: Any) -> None:
        connection.channel(on_open_callback=self._publisher_open)

    def _publisher_open(self, channel: Any) -> None:
        self._publish_channel = channel
        self._connection.channel(on_open_callback=self._consumer_open)

    def _consumer_open(self, channel: Any) -> None:
        channel.basic_consume(self.output_queue, self._arrived, auto_ack=True, callback=lambda _f: self._begin())

    def _begin(self) -> None:
        self._start = time.perf_counter()
        if self.window is not None:
            self._publish(min(self.window, len(self.samples)))
        else:
            self._tick()

    def _publish(self, count: int) -> None:
        for _ in range(count):
            if self._next >= len(self.samples):
                return
            sample = self.samples[self._next]
            self._next += 1
            self._sent[sample.order_id] = time.perf_counter()
            self._publish_channel.basic_publish(self.exchange, self.routing_key, sample.body, properties(sample))

    def _tick(self) -> None:
        assert self.rate is not None
        due = min(len(self.samples), int((time.perf_counter() - self._start) * self.rate) + 1)
        self._publish(due - self._next)
        if self._next < len(self.samples):
            self._connection.ioloop.call_later(0.001, self._tick)

    def _arrived(self, _channel: Any, _method: Any, props: Any, _body: bytes) -> None:
        now = time.perf_counter()
        sent = self._sent.pop(props.correlation_id or "", None)
        if sent is None:
            return  # not ours (a leftover of an earlier phase)
        self._latencies.append(now - sent)
        self._last = now
        done = len(self._latencies)
        if done % 100 == 0:
            self.progress(done)
        if self.window is not None:
            self._publish(1)
        if done == len(self.samples):
            self.progress(done)
            self._connection.close()

    def _watchdog(self) -> None:
        """Fail when nothing arrived for `stall_s` (or at all within it), else look again in a second."""
        since = self._last or self._start or self._created
        if time.perf_counter() - since > self.stall_s:
            self._fail(f"stalled: nothing arrived for {self.stall_s:.0f} s")
        elif self._connection.is_open:
            self._connection.ioloop.call_later(1.0, self._watchdog)

    def _fail(self, error: str) -> None:
        if self._error is None and len(self._latencies) < len(self.samples):
            self._error = f"{error} after {len(self._latencies)} of {len(self.samples)}"
        if self._connection is not None and self._connection.is_open:
            self._connection.close()
        else:
            self._connection.ioloop.stop()

    def _closed(self, error: BaseException) -> None:
        if len(self._latencies) < len(self.samples) and self._error is None:
            self._lost = f"connection closed: {error}"
        self._connection.ioloop.stop()
