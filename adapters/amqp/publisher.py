"""Publish a batch of outgoing messages with publisher confirms outstanding together.

kombu's confirm_publish=True makes py-amqp wait for each message's confirm before sending the next
(basic_publish_confirm): one round trip per message, 600-1,300 msg/s. Here the whole batch goes out first
and the confirms are collected afterwards, so a batch costs about one round trip (2,500-5,500 msg/s of
2 KB on a 2-CPU test machine, RabbitMQ included).

Every message gets a result; nothing here raises for a message that was not confirmed. The caller (the
transactional outbox) keeps unconfirmed messages and publishes them again later; consumers de-duplicate on
message_id, so a message that was in fact delivered before a failure was noticed does no harm.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import amqp
from amqp import spec
from kombu.connection import Connection
from kombu.messaging import Producer
from kombu.transport.pyamqp import Transport as PyAmqpTransport

from adapters.amqp.connection import each_node_once
from adapters.amqp.topology import Names
from broker.envelope import SCHEMA_VERSION_HEADER, Exchange, Outgoing
from broker.observability import metrics

log = logging.getLogger(__name__)

PERSISTENT = 2


@contextlib.contextmanager
def _one_write(transport: Any) -> Iterator[None]:
    """Gather the frames written inside into one socket write at the end.

    py-amqp writes each message's frames with a sendall of their own: for a batch of 100, 100 system calls
    and as many small TCP segments for RabbitMQ to read, a sixth of what publishing cost the worker. Its
    transports write through `_write` (the socket's sendall, or the TLS socket's write loop), so that is
    where the frames are collected (copied: py-amqp reuses its frame buffer). Nothing is written when the
    block raises.
    """
    frames: list[bytes] = []
    own = "_write" in vars(transport)  # TCP sets it per connection; TLS has it as a method
    original = transport._write
    transport._write = lambda data: frames.append(bytes(data))
    try:
        yield
    finally:
        if own:
            transport._write = original
        else:
            del transport._write
    if frames:
        transport.write(b"".join(frames))


@dataclass(frozen=True)
class PublishResult:
    ok: bool
    # "nacked", "unroutable: <reply text>", "timeout", "connection: ...", "channel: ..."
    error: str | None = None


CONFIRMED = PublishResult(True)


@dataclass
class _Batch:
    """Bookkeeping of the batch on the wire: which delivery tag is which message, and what came back."""

    results: list[PublishResult | None]
    by_tag: dict[int, int] = field(default_factory=dict)  # unconfirmed delivery tag -> index; ascending
    returned: dict[int, str] = field(default_factory=dict)  # delivery tag -> "unroutable: ..."
    # basic.return carries no delivery tag: it is matched on what it does carry. Two messages alike in
    # all three are routed alike, so taking the earliest unreturned one is exact.
    by_route: defaultdict[tuple[str, str, str], deque[int]] = field(default_factory=lambda: defaultdict(deque))

    def settle(self, tag: int, multiple: bool, error: str | None) -> None:
        for t in self._tags_upto(tag) if multiple else [tag]:
            index = self.by_tag.pop(t, None)
            if index is None:
                continue
            returned = self.returned.pop(t, None)
            if returned is not None:  # a basic.return precedes the ack of the same message
                self.results[index] = PublishResult(False, returned)
            elif error is not None:
                self.results[index] = PublishResult(False, error)
            else:
                self.results[index] = CONFIRMED

    def _tags_upto(self, tag: int) -> list[int]:
        # by_tag is in publish order, so the tags a multiple ack covers are a prefix of it.
        prefix = []
        for t in self.by_tag:
            if t > tag:
                break
            prefix.append(t)
        return prefix

    def fail_unsettled(self, error: str) -> None:
        self.by_tag.clear()
        self.results = [PublishResult(False, error) if r is None else r for r in self.results]

    def final(self) -> list[PublishResult]:
        # Every message is settled or failed by now; the default only keeps the type honest.
        return [r or PublishResult(False, "connection: no result") for r in self.results]


class InFlight:
    """A sent batch whose confirms are still to come: results() waits for them (at most the confirm timeout)."""

    def __init__(
        self, publisher: ConfirmingPublisher, state: _Batch | None, results: list[PublishResult] | None
    ) -> None:
        self._publisher = publisher
        self._state = state
        self._results = results

    def results(self) -> list[PublishResult]:
        if self._results is None:
            assert self._state is not None
            self._results = self._publisher._confirm(self._state)
        return self._results


class ConfirmingPublisher:
    """Publishes batches of Outgoing with confirms outstanding together, on a connection of its own.

    The connection must be the publisher's alone: waiting for confirms reads every frame of the
    connection, and would dispatch a consumer's deliveries from inside publish().
    """

    def __init__(self, connection: Connection, names: Names, confirm_timeout: float = 10.0) -> None:
        if (connection.transport_options or {}).get("confirm_publish"):
            # py-amqp would then replace basic_publish by one that waits for each confirm: the very
            # round trip per message this class exists to avoid.
            raise ValueError("give ConfirmingPublisher a connection without transport_options confirm_publish")
        self._connection = connection
        self._names = names
        self._confirm_timeout = confirm_timeout
        self._confirming = isinstance(connection.transport, PyAmqpTransport)
        self._channel: Any = None  # py-amqp channel in confirm mode, opened on first use
        self._last_tag = 0  # delivery tags count publishes per channel in confirm mode, from 1
        self._batch: _Batch | None = None
        self._errors = (*connection.connection_errors, *connection.channel_errors)
        self._blocked = False  # RabbitMQ said connection.blocked (a memory or disk alarm) and not yet unblocked

    def publish(self, batch: Sequence[Outgoing]) -> list[PublishResult]:
        """One result per message, in the order given: send the batch and wait for its confirms."""
        return self.send(batch).results()

    def send(self, batch: Sequence[Outgoing]) -> InFlight:
        """Put the batch on the wire and return at once; its confirms are collected by InFlight.results().

        The worker handles its next batch meanwhile (the confirms wait in the socket's buffer). One batch is
        in flight at a time: collect this one's results before sending the next.
        """
        if self._batch is not None:
            raise RuntimeError("a batch is in flight: collect its results() before sending another")
        if not batch:
            return InFlight(self, None, [])
        if not self._confirming:
            return InFlight(self, None, self._publish_unconfirmed(batch))
        try:
            channel = self._ready_channel()
        except self._errors as e:
            # Not connected, and one attempt to connect failed: nothing was sent.
            log.warning("AMQP publisher cannot connect: %s", e)
            return InFlight(self, None, [PublishResult(False, f"connection: {e}")] * len(batch))
        state = self._batch = _Batch([None] * len(batch))
        try:
            self._notice_blocked()
            now = int(time.time())
            # timeout bounds the socket writes: a connection RabbitMQ has blocked (memory or disk alarm) stops
            # reading, and the batch then fails as "connection: ..." instead of hanging. Set once per batch:
            # basic_publish sets and restores it around every message (two syscalls each).
            transport = channel.connection.transport
            with transport.having_timeout(self._confirm_timeout), _one_write(transport):
                for index, o in enumerate(batch):
                    self._send(channel, state, index, o, now)
        except (TimeoutError, OSError) as e:  # a write that timed out: the socket is as good as dead
            self._failed(state, ConnectionError(f"publish timed out: {e}"))
            return InFlight(self, None, state.final())
        except self._errors as e:
            self._failed(state, e)
            return InFlight(self, None, state.final())
        except BaseException:
            # Nothing of the batch was written (see _one_write), yet its delivery tags were counted: a fresh
            # channel starts counting again, so later confirms are not matched to the wrong messages.
            self._batch = None
            self._drop_channel()
            raise
        return InFlight(self, state, None)

    def _notice_blocked(self) -> None:
        """Read what RabbitMQ sent meanwhile (connection.blocked, confirms of nothing, a close), once per batch.

        py-amqp's basic_publish does this before every message: a recv and two timeout changes each, a third
        of what publishing cost.
        """
        with contextlib.suppress(TimeoutError):
            self._connection.drain_events(timeout=0)

    def _confirm(self, state: _Batch) -> list[PublishResult]:
        try:
            self._await_confirms(state)
        except self._errors as e:
            self._failed(state, e)
        finally:
            self._batch = None
        return state.final()

    def _failed(self, state: _Batch, error: BaseException) -> None:
        self._batch = None
        if isinstance(error, tuple(self._connection.channel_errors)):
            # The server closed the channel (a missing exchange, say); py-amqp reopens it behind our
            # back, without confirm mode, so it is dropped and a fresh one opened on the next batch.
            log.warning("AMQP channel error while publishing: %s", error)
            state.fail_unsettled(f"channel: {error}")
            self._drop_channel()
        else:
            log.warning("AMQP connection error while publishing: %s", error)
            state.fail_unsettled(f"connection: {error}")
            self._reconnect()

    def blocked(self) -> bool:
        """Whether RabbitMQ blocks this connection's publishing (a memory or disk alarm on any node of the
        cluster). Once blocked, each call reads what RabbitMQ sent meanwhile, so connection.unblocked is seen
        although nothing is published."""
        if self._blocked and self._channel is None:
            self._blocked = False  # the connection was dropped: a new one starts unblocked (or is told again)
        if self._blocked:
            try:
                self._connection.drain_events(timeout=0)
            except TimeoutError:
                pass
            except self._errors as e:
                log.info("AMQP publisher connection lost while blocked (%s); reconnecting", e)
                self._channel = None
                self._drop_connection()
                self._blocked = False  # a new connection starts unblocked; RabbitMQ says so again if it is not
        return self._blocked

    def _watch_blocking(self, connection: Any) -> None:
        self._blocked = False
        connection.on_blocked = self._on_blocked
        connection.on_unblocked = self._on_unblocked

    def _on_blocked(self, reason: str) -> None:
        log.warning("RabbitMQ blocks publishing (%s): no new work until it unblocks", reason)
        metrics.AMQP_BLOCKS.inc()
        self._blocked = True

    def _on_unblocked(self) -> None:
        log.warning("RabbitMQ unblocked publishing")
        self._blocked = False

    def close(self) -> None:
        self._channel = None
        self._connection.release()

    # -- confirmed publishing (RabbitMQ through py-amqp) --

    def _ready_channel(self) -> Any:
        if self._channel is not None and not self._still_open():
            self._channel = None
            self._drop_connection()
        if self._channel is None:
            # One attempt per node, no sleeping: backing off is the outbox's job, not a hidden retry here.
            self._connection.ensure_connection(
                max_retries=each_node_once(self._connection), reraise_as_library_errors=False
            )
            self._watch_blocking(self._connection.connection)
            channel = self._connection.channel()
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            channel.events["basic_return"].add(self._on_return)
            self._channel, self._last_tag = channel, 0
        return self._channel

    def _still_open(self) -> bool:
        # Pick up what the server said while we were idle (a close after a restart, a missed heartbeat),
        # so that a batch starts on a live connection instead of failing midway.
        try:
            self._connection.drain_events(timeout=0)
        except TimeoutError:
            return True  # nothing was waiting: the normal case
        except self._errors as e:
            log.info("AMQP publisher connection found closed (%s); reconnecting", e)
            return False
        return True

    def _send(self, channel: Any, state: _Batch, index: int, o: Outgoing, now: int) -> None:
        exchange = self._names.exchange(o.exchange)
        properties = _properties(o, now)
        headers = properties.pop("headers")
        message = amqp.Message(o.body, content_type=o.content_type, application_headers=headers, **properties)
        self._last_tag += 1
        state.by_tag[self._last_tag] = index
        state.by_route[(o.message_id, exchange, o.routing_key)].append(self._last_tag)
        # basic.publish itself, without basic_publish's per-message read and timeout changes (done per batch
        # in send()): argument signature and values as py-amqp's Channel.basic_publish sends them.
        channel.send_method(spec.Basic.Publish, "Bssbb", (0, exchange, o.routing_key, _mandatory(o), False), message)

    def _await_confirms(self, state: _Batch) -> None:
        deadline = time.monotonic() + self._confirm_timeout
        while state.by_tag:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self._connection.drain_events(timeout=remaining)
            except TimeoutError:
                break
        if state.by_tag:
            state.fail_unsettled("timeout")
            if self._blocked:
                # Blocked by an alarm: the connection is kept, for its connection.unblocked ends the wait. The
                # late confirms name tags of no batch in flight and are ignored (the relay publishes again).
                return
            # The late confirms would name tags of a batch that is gone; a fresh connection starts over.
            # Closing without the handshake: a connection that stopped confirming may not answer it.
            self._channel = None
            self._drop_connection()

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        if self._batch is not None:
            self._batch.settle(delivery_tag, multiple, None)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        if self._batch is not None:
            self._batch.settle(delivery_tag, multiple, "nacked")

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        state = self._batch
        if state is None:
            return
        tags = state.by_route.get((message.properties.get("message_id", ""), exchange, routing_key))
        while tags:
            tag = tags.popleft()
            if tag in state.by_tag:
                state.returned[tag] = f"unroutable: {exc.reply_text}"
                return

    def _drop_channel(self) -> None:
        channel, self._channel = self._channel, None
        if channel is None:
            return
        try:
            channel.close()
        except self._errors as e:
            log.warning("AMQP channel close failed (%s); reconnecting", e)
            self._reconnect()

    def _reconnect(self) -> None:
        """Drop the connection and connect again, once (to each node of a cluster); if that fails too, the next
        publish tries."""
        self._channel = None
        self._drop_connection()
        try:
            self._connection.ensure_connection(
                max_retries=each_node_once(self._connection), reraise_as_library_errors=False
            )
        except self._errors as e:
            log.warning("AMQP publisher reconnect failed: %s", e)

    def _drop_connection(self) -> None:
        """Forget a connection the server closed or that failed: no close handshake (it may not answer), and
        on a cluster the next node first (the one just lost may be stopping, and hold a new connection until
        its timeout)."""
        self._connection.collect()
        self._connection.maybe_switch_next()

    # -- the in-memory transport (embedded default) --

    def _publish_unconfirmed(self, batch: Sequence[Outgoing]) -> list[PublishResult]:
        # kombu's memory transport has no confirms and loses nothing within the process.
        results: list[PublishResult] = []
        producer = Producer(self._connection)
        now = int(time.time())
        for o in batch:
            try:
                producer.publish(
                    o.body,
                    exchange=self._names.exchange(o.exchange),
                    routing_key=o.routing_key,
                    content_type=o.content_type,
                    content_encoding="binary",
                    **_properties(o, now),
                )
            except self._errors as e:
                results.append(PublishResult(False, f"connection: {e}"))
            else:
                results.append(CONFIRMED)
        return results


def _mandatory(o: Outgoing) -> bool:
    """Whether RabbitMQ must return the message when no queue takes it. Every message of the contract, yes: the
    outbox row stays pending and the relay tries again. Not the monitoring stream on hmc.events (the wire tap,
    outages): nobody need listen there, and returned, each event came back whole to the worker (a third more
    frames to read per order when no monitoring queue is bound)."""
    return o.exchange is not Exchange.EVENTS


def _properties(o: Outgoing, now: int) -> dict[str, Any]:
    """AMQP properties of the contract (DESIGN.md section 4), as keyword arguments of kombu and py-amqp."""
    properties: dict[str, Any] = {
        "message_id": o.message_id,
        "type": o.message_type,
        "timestamp": now if o.timestamp is None else o.timestamp,
        "delivery_mode": PERSISTENT,
        "headers": {SCHEMA_VERSION_HEADER: o.schema_version, **o.headers},
    }
    if o.correlation_id is not None:
        properties["correlation_id"] = o.correlation_id
    return properties
