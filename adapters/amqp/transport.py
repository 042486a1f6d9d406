"""The worker's AMQP transport: consume on one connection, publish with confirms on another.

Consuming and publishing with confirms on one kombu connection re-enters the consumer callback while
waiting for a confirm (a RecursionError at prefetch 100, a hang at 10), so the publisher has its own.
Connection loss is survived by reconnecting with backoff; unacknowledged messages return to their
queue and the store's de-duplication makes their redelivery harmless.

A frozen worker (SIGSTOP, a VM paused, a process hung in the kernel) gives up its partitions through the
AMQP heartbeat of its consuming connection: RabbitMQ closes a connection it has heard nothing from for two
to three heartbeat intervals (HMC_AMQP_HEARTBEAT_S, 3 s: 6-7 s to the takeover in tests/e2e/test_faults.py),
which returns its unacknowledged messages to the head of their queues and makes the standby's waiting
single-active consumer the active one. Order holds, and nothing goes out twice under another id: the store
recognises what the frozen worker had committed, and its pending outbox rows go out first.
Why the heartbeat and not RabbitMQ's consumer timeout: that timeout counts from the oldest delivery left
unacknowledged (30 min by default, checked about once a minute) and then closes the channel only, so a frozen
worker that had nothing unacknowledged would keep its partitions, and a short one would also fire on a
healthy worker waiting out a store outage with its batch in hand.

A healthy worker must not lose its partitions while it is busy (a long commit, a store outage it retries,
confirms it waits for up to HMC_CONFIRM_TIMEOUT_S): a thread of this transport sends the heartbeat frames
whatever the worker's thread is doing. A lock keeps the two threads from writing on the connection at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kombu.message import Message as KombuMessage
from kombu.messaging import Consumer
from kombu.transport.pyamqp import Transport as PyAmqpTransport

from adapters.amqp.connection import connect
from adapters.amqp.publisher import ConfirmingPublisher, InFlight, PublishResult
from adapters.amqp.stats import queue_counts
from adapters.amqp.topology import SIDES, Names, TopologySettings, broker_queues, declare, delete
from broker.config import Settings
from broker.envelope import Delivery, Outgoing
from broker.model.codes import Side

log = logging.getLogger(__name__)
QUIET_S = 0.001  # a batch that received nothing for this long is complete: the sender has paused


def topology_settings(settings: Settings) -> TopologySettings:
    return TopologySettings(
        prefix=settings.prefix,
        queue_type=settings.queue_type,
        partitions=settings.partitions,
        customers=tuple(c.number for c in settings.customers),
        invoice_customers=tuple(c.number for c in settings.customers if c.invoice),
    )


def partner_queues(settings: Settings) -> dict[str, str]:
    """The queue each partner consumes: SESAM2's, and each customer system's."""
    names = Names(settings.prefix)
    queues = {"sesam2": names.sesam2_queue}
    queues.update({f"customer-{c.number}": names.customer_queue(c.number) for c in settings.customers})
    return queues


def read_queue_counts(settings: Settings, queues: list[str]) -> dict[str, tuple[int, int] | None]:
    """(messages, consumers) per queue, or {} when RabbitMQ cannot be reached."""
    connection = connect(settings)
    try:
        connection.ensure_connection(max_retries=1)
        return queue_counts(connection, queues)
    except (*connection.connection_errors, OSError) as e:
        log.warning("queue statistics unavailable", extra={"error": str(e)})
        return {}
    finally:
        connection.release()


def declare_topology(settings: Settings) -> None:
    with connect(settings) as conn:
        declare(conn, topology_settings(settings))


def delete_topology(settings: Settings, *, force: bool = False) -> list[str]:
    """Delete what declare_topology declares; the queues kept because they still hold messages."""
    with connect(settings) as conn:
        return delete(conn, topology_settings(settings), force=force)


@dataclass
class Taken:
    delivery: Delivery
    message: KombuMessage
    lost: tuple[type[BaseException], ...]  # the transport's connection and channel errors
    via: Any = None  # the consuming connection it came on (a lost ack replaces only that one)

    def ack(self) -> None:
        try:
            self.message.ack()
        except self.lost as e:
            # The connection went away after the commit: RabbitMQ redelivers the message, and the store
            # recognises its id and sends nothing again.
            log.warning("ack lost with the connection; the message will be redelivered", extra={"error": str(e)})


def to_delivery(side: Side, body: bytes, message: KombuMessage) -> Delivery:
    props: dict[str, Any] = message.properties or {}
    info: dict[str, Any] = message.delivery_info or {}
    headers = {str(k): str(v) for k, v in (message.headers or {}).items()}
    return Delivery(
        side=side,
        body=body,
        routing_key=str(info.get("routing_key") or ""),
        message_id=props.get("message_id"),
        correlation_id=props.get("correlation_id"),
        message_type=props.get("type"),
        user_id=props.get("user_id"),
        reply_to=props.get("reply_to"),
        headers=headers,
        published_at=_epoch(props.get("timestamp")),
    )


def _epoch(timestamp: object) -> float | None:
    """The AMQP timestamp property in epoch seconds: py-amqp hands it over as a naive UTC datetime."""
    if isinstance(timestamp, datetime):
        return timestamp.replace(tzinfo=timestamp.tzinfo or UTC).timestamp()
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        return float(timestamp)
    return None


class AmqpTransport:
    def __init__(self, settings: Settings, *, declare_topology: bool = True) -> None:
        self.settings = settings
        self.topology = topology_settings(settings)
        self.names = Names(settings.prefix)
        self._buffer: list[Taken] = []
        self._consumers: list[Consumer] = []
        # The worker's thread and the heartbeat thread share the consuming connection; one writes at a time.
        self._lock = threading.RLock()
        self._beat_s = settings.amqp_heartbeat_s / 3  # three frames per interval: one late or lost is no loss
        self._closing = threading.Event()
        self.consume_connection = self._connect_consumer()
        if declare_topology:
            with connect(settings) as conn:
                declare(conn, self.topology)  # at every start: idempotent
        self.publisher = ConfirmingPublisher(connect(settings), self.names, confirm_timeout=settings.confirm_timeout_s)
        self._announcer: ConfirmingPublisher | None = None
        self._confirming_transport = isinstance(self.consume_connection.transport, PyAmqpTransport)
        self._consuming = False
        self._standby = False
        self._standby_at = 0.0
        self._channel: Any = None
        if self._confirming_transport and settings.amqp_heartbeat_s > 0:
            threading.Thread(target=self._beat, name="amqp-heartbeat", daemon=True).start()

    # ---------------------------------------------------------------- consume

    def _connect_consumer(self, after: Any = None) -> Any:
        return connect(self.settings, after=after, heartbeat=self.settings.amqp_heartbeat_s)

    def _beat(self) -> None:
        """Send a heartbeat frame three times per interval while consuming, however busy the worker's thread is.

        Only frames out: reading is the worker's thread's (it checks the server's heartbeats after each read,
        in receive). A send that fails leaves the loss to that thread too, at its next receive.
        """
        while not self._closing.wait(self._beat_s):
            with self._lock:
                connection = self.consume_connection
                if not (self._consuming and connection.connected):
                    continue
                with contextlib.suppress(*connection.connection_errors, OSError):
                    connection.connection.send_heartbeat()

    def _start(self) -> None:
        self.consume_connection.ensure_connection(max_retries=None, interval_start=0.5, interval_max=5)
        self._channel = self.consume_connection.channel()
        # Prefetch two batches: one being processed, one arriving meanwhile.
        self._channel.basic_qos(0, self.settings.batch_size * 2, False)
        self._consumers = []
        self._standby = self._subscribe(home=True)
        self._standby_at = time.monotonic() + self.settings.standby_delay_s
        self._consuming = True

    def _subscribe(self, *, home: bool) -> bool:
        """Consume this worker's own partitions (home) or the others; True when some were left for later."""
        queues = broker_queues(self.topology)
        left = False
        for side in SIDES:
            names = self.names.inbound_queues(side, self.topology.partitions)
            mine = {n for i, n in enumerate(names) if (i % self.settings.workers == self.settings.worker_index) == home}
            left = left or (home and len(mine) < len(names))
            chosen = [q for q in queues if q.name in mine]
            if not chosen:
                continue
            # on_message, not callbacks: kombu then hands over the raw message without decoding its body. With
            # callbacks it decodes first (application/xml as UTF-8 text), and a body that is not valid UTF-8
            # raised out of drain_events: a poison message that stopped the worker at every redelivery.
            consumer = Consumer(self._channel, queues=chosen, on_message=self._taker(Side(side)), accept=None)
            consumer.consume()
            self._consumers.append(consumer)
        return left

    def _taker(self, side: Side) -> Any:
        def take(message: KombuMessage) -> None:
            # message.body is the raw payload (bytes): the broker's own parser decides what it is.
            body = message.body if isinstance(message.body, bytes) else str(message.body).encode()
            lost = (*self.consume_connection.connection_errors, *self.consume_connection.channel_errors)
            self._buffer.append(Taken(to_delivery(side, body, message), message, lost, self.consume_connection))

        return take

    def receive(self, max_count: int, wait_s: float, idle_s: float) -> Sequence[Taken]:
        """Up to `max_count` messages: wait up to `idle_s` for the first, then take more while they keep coming.

        A batch takes every message that has already arrived (up to `max_count`), whatever `wait_s`; it waits for
        more only until `wait_s` has passed since its first, and closes sooner when none followed within QUIET_S.
        Under load the prefetched messages are already in the socket's buffer and batches fill at once (one
        commit and one confirm wait for many); with `wait_s` 0 a trickle is not held back at all.
        """
        first_by = time.monotonic() + idle_s
        deadline: float | None = None
        try:
            # Inside the try: a connection that drops while consuming is being set up (RabbitMQ still
            # starting after a restart) is lost like any other, not an error that ends the worker.
            with self._lock:
                if not self._consuming:
                    self._start()
                elif self._standby and time.monotonic() >= self._standby_at:
                    self._standby = self._subscribe(home=False)  # stand by for the partitions of other workers
            while len(self._buffer) < max_count:
                if deadline is None:  # nothing yet: wait for the first message
                    timeout = first_by - time.monotonic()
                    if timeout <= 0:
                        break
                else:  # what has arrived already joins at once; more is waited for until the deadline
                    timeout = max(0.0, min(deadline - time.monotonic(), QUIET_S))
                if not self._drain(min(timeout, self._beat_s)) and deadline is not None:
                    break  # nothing more (within QUIET_S, or now): the batch is complete
                if deadline is None and self._buffer:
                    deadline = time.monotonic() + wait_s
        except self.consume_connection.recoverable_connection_errors as e:
            with self._lock:
                self._lost(e)
        batch, self._buffer = self._buffer[:max_count], self._buffer[max_count:]
        return batch

    def _drain(self, timeout: float) -> bool:
        """Read what arrives within `timeout` (False: nothing did). The lock is held for one read at most, so
        the heartbeat thread is never kept waiting longer than that."""
        with self._lock:
            try:
                self.consume_connection.drain_events(timeout=timeout)
                return True
            except TimeoutError:
                return False
            finally:
                # Only right after a read: what the server sent while the worker was busy has been counted,
                # so a busy worker does not take its own silence for the server's.
                self.consume_connection.heartbeat_check()

    def _lost(self, error: BaseException) -> None:
        """Messages taken but not acknowledged return to the queue by themselves; drop them here."""
        log.warning("AMQP connection lost, reconnecting", extra={"error": str(error)})
        self._buffer.clear()
        self._consuming = False
        lost = self.consume_connection
        with contextlib.suppress(*lost.connection_errors, OSError):
            lost.close()  # it is gone either way
        self.consume_connection = self._connect_consumer(after=lost)  # a cluster's next node first

    def partner_queues(self) -> dict[str, str]:
        return partner_queues(self.settings)

    def own_queues(self) -> list[str]:
        return [
            *(q for side in SIDES for q in self.names.inbound_queues(side, self.topology.partitions)),
            self.names.dead_letter_queue,
        ]

    def queue_counts(self, queues: list[str]) -> dict[str, tuple[int, int] | None]:
        return read_queue_counts(self.settings, queues)

    def connected(self) -> bool:
        return bool(self._consuming and self.consume_connection.connected)

    def acknowledge(self, batch: Sequence[Any]) -> None:
        """Acknowledge a batch: on RabbitMQ with one basic.ack (multiple) up to its last delivery tag.

        Exact because the worker acknowledges whole batches in the order they arrived: every delivery before
        this batch's last one on its channel is this batch's or an earlier, acknowledged one. One frame
        instead of one per message (a write each: 10 % of a worker's time at 100-message batches).
        Anything else (kombu's memory transport ignores `multiple`; a replay's own deliveries) is
        acknowledged one by one.
        """
        with self._lock:
            self._acknowledge(batch)

    def _acknowledge(self, batch: Sequence[Any]) -> None:
        takens = [t for t in batch if isinstance(t, Taken)]
        channel = takens[-1].message.channel if takens else None
        if (
            channel is None
            or not self._confirming_transport
            or len(takens) != len(batch)
            or any(t.message.channel is not channel for t in takens)
        ):
            for received in batch:
                received.ack()
            return
        try:
            channel.basic_ack(takens[-1].message.delivery_tag, multiple=True)
        except (*self.consume_connection.connection_errors, *self.consume_connection.channel_errors) as e:
            # The connection went away after the commit: RabbitMQ redelivers the batch, and the store
            # recognises its ids and sends nothing again. The connection is left half-closed (its next read
            # only times out), so it is replaced now.
            log.warning("ack lost with the connection; the batch will be redelivered", extra={"error": str(e)})
            if takens[-1].via is self.consume_connection:  # not one replaced already, by a receive since
                self._lost(e)

    # ---------------------------------------------------------------- publish

    def publish(self, batch: Sequence[Outgoing]) -> list[PublishResult]:
        return self.publisher.publish(batch)

    def send(self, batch: Sequence[Outgoing]) -> InFlight:
        return self.publisher.send(batch)

    def blocked(self) -> bool:
        return self.publisher.blocked()

    def announce(self, batch: Sequence[Outgoing]) -> list[PublishResult]:
        """The watch's thread publishes here: a publisher and connection of its own, made on first use."""
        if self._announcer is None:
            self._announcer = ConfirmingPublisher(
                connect(self.settings), self.names, confirm_timeout=self.settings.confirm_timeout_s
            )
        return self._announcer.publish(batch)

    def close(self) -> None:
        self._closing.set()
        self.publisher.close()
        if self._announcer is not None:
            self._announcer.close()
        with self._lock:
            self.consume_connection.release()
