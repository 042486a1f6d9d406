"""The confirming publisher on RabbitMQ, read back with pika; and on the in-memory transport."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, overload
from uuid import uuid4

import pika
import pytest
from kombu.connection import Connection
from kombu.entity import Queue as KombuQueue
from pika.adapters.blocking_connection import BlockingChannel

from adapters.amqp.publisher import ConfirmingPublisher, PublishResult
from adapters.amqp.topology import Names, TopologySettings, declare, sesam2_message_types
from broker.envelope import CONTENT_TYPE, Exchange, Outgoing

if TYPE_CHECKING:
    from tests.support.fixtures import Declared

services = pytest.mark.services
Topology = Callable[..., TopologySettings]
FIXED_TIME = 1_767_225_600  # 2026-01-01T00:00:00Z


def outgoing(n: int, **changes: object) -> Outgoing:
    types = sesam2_message_types()
    fields: dict[str, object] = {
        "exchange": Exchange.SESAM2_OUT,
        "routing_key": types[n % len(types)],
        "body": f"<m n='{n}'/>".encode(),
        "message_id": f"msg-{n}",
        "message_type": types[n % len(types)],
        "correlation_id": f"order-{n % 7}",
        "timestamp": None if n % 2 else FIXED_TIME,
        "headers": {"x-trace": f"t{n}"} if n % 3 == 0 else {},
    }
    return Outgoing(**{**fields, **changes})  # type: ignore[arg-type]


def take_all(channel: BlockingChannel, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    taken: list[tuple[pika.BasicProperties, bytes]] = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((properties, body))


@pytest.fixture
def publisher(amqp_url: str, prefix: str) -> Iterator[ConfirmingPublisher]:
    p = ConfirmingPublisher(Connection(amqp_url), Names(prefix), confirm_timeout=10)
    yield p
    p.close()


@services
def test_a_batch_arrives_with_every_property(
    topology: Topology, publisher: ConfirmingPublisher, pika_channel: BlockingChannel
) -> None:
    settings = topology()
    batch = [outgoing(n) for n in range(500)]
    before = int(time.time())
    assert publisher.publish(batch) == [PublishResult(True)] * 500
    after = int(time.time())
    received = take_all(pika_channel, Names(settings.prefix).sesam2_queue)
    assert len(received) == 500
    for o, (p, body) in zip(batch, received, strict=True):
        assert body == o.body
        assert (p.message_id, p.correlation_id, p.type) == (o.message_id, o.correlation_id, o.message_type)
        assert p.content_type == CONTENT_TYPE
        assert p.delivery_mode == 2
        assert p.timestamp == FIXED_TIME if o.timestamp else before <= p.timestamp <= after
        assert p.headers == {"x-schema-version": "1.0", **o.headers}


@services
def test_an_unroutable_message_fails_alone(
    topology: Topology, publisher: ConfirmingPublisher, pika_channel: BlockingChannel
) -> None:
    settings = topology(customers=("1001",))
    batch = [
        outgoing(0),
        outgoing(1),
        # No queue binds customer 9999; same message_id as a routed one, which must not be blamed.
        outgoing(1, exchange=Exchange.CUSTOMER_OUT, routing_key="9999.OrderConfirmation"),
        outgoing(3, exchange=Exchange.CUSTOMER_OUT, routing_key="1001.OrderConfirmation"),
        outgoing(4),
    ]
    results = publisher.publish(batch)
    assert [r.ok for r in results] == [True, True, False, True, True]
    assert results[2].error is not None and results[2].error.startswith("unroutable")
    names = Names(settings.prefix)
    assert [p.message_id for p, _ in take_all(pika_channel, names.sesam2_queue)] == ["msg-0", "msg-1", "msg-4"]
    assert [p.message_id for p, _ in take_all(pika_channel, names.customer_queue("1001"))] == ["msg-3"]
    assert publisher.publish([outgoing(5)]) == [PublishResult(True)]  # the channel carries on


@services
def test_monitoring_events_need_no_listener_and_reach_one_that_binds(
    topology: Topology, publisher: ConfirmingPublisher, pika_channel: BlockingChannel
) -> None:
    settings = topology()
    events = [
        outgoing(n, exchange=Exchange.EVENTS, routing_key="translate.ok", content_type="application/json")
        for n in range(3)
    ]
    # No queue on hmc.events: the wire tap is not mandatory, so nothing comes back and nothing fails.
    assert publisher.publish([outgoing(0), *events]) == [PublishResult(True)] * 4
    listener = pika_channel.queue_declare("", exclusive=True).method.queue
    pika_channel.queue_bind(listener, Names(settings.prefix).exchange(Exchange.EVENTS), "#")
    assert publisher.publish(events) == [PublishResult(True)] * 3
    assert [p.message_id for p, _ in take_all(pika_channel, listener)] == ["msg-0", "msg-1", "msg-2"]


@services
def test_direct_reaches_a_reply_queue(
    topology: Topology, prefix: str, publisher: ConfirmingPublisher, pika_channel: BlockingChannel
) -> None:
    topology()
    reply_to = pika_channel.queue_declare(f"{prefix}reply", exclusive=True).method.queue  # gone with pika
    results = publisher.publish(
        [
            outgoing(0, exchange=Exchange.DIRECT, routing_key=reply_to, message_type="OrderStatusReply"),
            outgoing(1, exchange=Exchange.DIRECT, routing_key=f"{prefix}nobody-listens"),
        ]
    )
    assert results[0] == PublishResult(True)
    assert not results[1].ok and results[1].error is not None and results[1].error.startswith("unroutable")
    [(properties, _)] = take_all(pika_channel, reply_to)
    assert (properties.message_id, properties.type) == ("msg-0", "OrderStatusReply")


@services
def test_a_queue_that_refuses_nacks(
    topology: Topology, prefix: str, publisher: ConfirmingPublisher, pika_channel: BlockingChannel
) -> None:
    topology()
    full = pika_channel.queue_declare(
        f"{prefix}full", exclusive=True, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}
    ).method.queue
    batch = [outgoing(n, exchange=Exchange.DIRECT, routing_key=full) for n in range(3)]
    nacked = PublishResult(False, "nacked")
    assert publisher.publish(batch) == [PublishResult(True), nacked, nacked]


@services
def test_a_missing_exchange_fails_the_batch_and_the_next_one_works(
    amqp_url: str, declared: Declared, prefix: str, pika_channel: BlockingChannel
) -> None:
    names = Names(f"{prefix}later.")  # nothing declared under it yet
    publisher = ConfirmingPublisher(Connection(amqp_url), names)
    try:
        results = publisher.publish([outgoing(n) for n in range(3)])
        assert [r.ok for r in results] == [False] * 3
        assert all(r.error is not None and r.error.startswith("channel: ") for r in results), results
        settings = declared.add(TopologySettings(prefix=names.prefix))
        with Connection(amqp_url) as connection:
            declare(connection, settings)
        # A fresh channel in confirm mode (py-amqp had silently reopened the failed one without it).
        assert publisher.publish([outgoing(n) for n in range(3)]) == [PublishResult(True)] * 3
        assert len(take_all(pika_channel, names.sesam2_queue)) == 3
    finally:
        publisher.close()


@services
def test_a_connection_dropped_while_idle_is_replaced_before_the_batch(
    amqp_url: str, topology: Topology, prefix: str, pika_channel: BlockingChannel
) -> None:
    settings = topology()
    connection = Connection(amqp_url)
    publisher = ConfirmingPublisher(connection, Names(prefix))
    try:
        assert publisher.publish([outgoing(0)]) == [PublishResult(True)]
        connection.connection.sock.shutdown(socket.SHUT_RDWR)  # the network drops the connection
        assert publisher.publish([outgoing(1), outgoing(2)]) == [PublishResult(True)] * 2
        assert len(take_all(pika_channel, Names(settings.prefix).sesam2_queue)) == 3
    finally:
        publisher.close()


def test_no_server_fails_every_message_without_raising() -> None:
    with socket.socket() as s:  # a port where nobody listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    publisher = ConfirmingPublisher(Connection(f"amqp://guest:guest@127.0.0.1:{port}//"), Names("x."))
    results = publisher.publish([outgoing(0), outgoing(1)])
    assert [r.ok for r in results] == [False, False]
    assert all(r.error is not None and r.error.startswith("connection: ") for r in results)


def test_confirm_publish_connections_are_refused() -> None:
    with pytest.raises(ValueError, match="confirm_publish"):
        ConfirmingPublisher(Connection("amqp://", transport_options={"confirm_publish": True}), Names())


def test_memory_transport_publishes_to_a_kombu_consumer() -> None:
    names = Names(f"m{uuid4().hex[:8]}.")
    settings = TopologySettings(prefix=names.prefix, customers=("1001",))
    with Connection("memory://") as connection:
        declare(connection, settings)
        publisher = ConfirmingPublisher(connection, names)
        batch = [outgoing(0), outgoing(1, exchange=Exchange.CUSTOMER_OUT, routing_key="1001.OrderConfirmation")]
        assert publisher.publish(batch) == [PublishResult(True)] * 2
    with Connection("memory://") as consumer:  # another connection: the in-memory broker is per process
        channel = consumer.channel()
        message = KombuQueue(names.sesam2_queue, no_declare=True)(channel).get(no_ack=True)
        assert message is not None and message.body == batch[0].body
        assert message.properties["message_id"] == "msg-0"
        assert message.properties["correlation_id"] == "order-0"
        assert message.properties["type"] == batch[0].message_type
        assert message.properties["delivery_mode"] == 2
        assert message.headers == {"x-schema-version": "1.0", "x-trace": "t0"}
        assert message.content_type == CONTENT_TYPE
        other = KombuQueue(names.customer_queue("1001"), no_declare=True)(channel).get(no_ack=True)
        assert other is not None and other.properties["message_id"] == "msg-1"


@services
@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_throughput_print(
    topology: Topology, publisher: ConfirmingPublisher, pika_channel: BlockingChannel, queue_type: str
) -> None:
    settings = topology(queue_type=queue_type)
    body = os.urandom(1024).hex().encode()  # 2 KB
    batch = [outgoing(n, body=body) for n in range(5000)]
    publisher.publish(batch[:10])  # connect and open the channel outside the measurement
    started = time.perf_counter()
    results = publisher.publish(batch)
    elapsed = time.perf_counter() - started
    print(f"\n{queue_type}: 5,000 x 2 KB confirmed in {elapsed:.2f} s = {5000 / elapsed:,.0f} msg/s")
    assert all(r.ok for r in results)
    pika_channel.queue_purge(Names(settings.prefix).sesam2_queue)


class _CloseMidway(Sequence[Outgoing]):
    """A batch that has RabbitMQ close the publisher's connection just before its item `at` is sent."""

    def __init__(self, items: list[Outgoing], at: int, close: Callable[[], None]) -> None:
        self.items, self.at, self.close = items, at, close

    def __len__(self) -> int:
        return len(self.items)

    @overload
    def __getitem__(self, index: int) -> Outgoing: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Outgoing]: ...
    def __getitem__(self, index: int | slice) -> Outgoing | Sequence[Outgoing]:
        if index == self.at:
            self.close()
        return self.items[index]


def _rabbitmqctl(*args: str) -> str:
    return subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, text=True).stdout


@services
def test_a_connection_closed_midway_fails_the_rest_and_the_next_batch_works(
    amqp_url: str, topology: Topology, prefix: str, pika_channel: BlockingChannel
) -> None:
    if shutil.which("rabbitmqctl") is None:
        pytest.skip("rabbitmqctl is not on PATH")
    settings = topology()
    connection = Connection(amqp_url)
    publisher = ConfirmingPublisher(connection, Names(prefix))
    try:
        assert publisher.publish([outgoing(0)]) == [PublishResult(True)]
        port = connection.connection.sock.getsockname()[1]
        try:
            listing = _rabbitmqctl("list_connections", "pid", "peer_port", "--no-table-headers")
        except (OSError, subprocess.CalledProcessError) as e:
            pytest.skip(f"rabbitmqctl cannot reach the node: {e}")
        [pid] = [line.split()[0] for line in listing.splitlines() if line.split()[1:] == [str(port)]]

        def close() -> None:
            _rabbitmqctl("close_connection", pid, "test: connection lost midway")
            time.sleep(0.2)  # let the server's close reach the socket

        batch = _CloseMidway([outgoing(n) for n in range(1, 101)], at=50, close=close)
        results = publisher.publish(batch)
        assert len(results) == 100
        assert all(not r.ok and r.error is not None and r.error.startswith("connection: ") for r in results[50:])
        confirmed = [o.message_id for o, r in zip(batch.items, results, strict=True) if r.ok]
        arrived = [p.message_id for p, _ in take_all(pika_channel, Names(settings.prefix).sesam2_queue)]
        assert set(confirmed) <= set(arrived), "what was reported confirmed really arrived"
        # The publisher reconnected: the outbox's retry of the failed messages goes through.
        retry = [o for o, r in zip(batch.items, results, strict=True) if not r.ok]
        assert publisher.publish(retry) == [PublishResult(True)] * len(retry)
    finally:
        publisher.close()


@services
def test_a_batch_goes_out_in_one_socket_write_and_arrives_whole_in_order(
    topology: Topology, publisher: ConfirmingPublisher, pika_channel: BlockingChannel
) -> None:
    """One write per batch, not one per message (each a system call and a segment for RabbitMQ to read);
    a batch larger than a frame (a body above frame_max goes out in several frames) is gathered too."""
    settings = topology()
    publisher.publish([outgoing(0)])  # connected, channel in confirm mode
    transport = publisher._connection.connection.transport
    writes: list[int] = []
    sendall = transport._write
    transport._write = lambda data: (writes.append(len(data)), sendall(data))[1]
    big = outgoing(1, body=b"<m>" + b"x" * 300_000 + b"</m>")  # above the negotiated frame_max (128 KiB)
    batch = [outgoing(n) for n in range(2, 52)] + [big]
    assert publisher.publish(batch) == [PublishResult(True)] * len(batch)
    assert len(writes) == 1 and writes[0] > 300_000
    received = take_all(pika_channel, Names(settings.prefix).sesam2_queue)
    assert [p.message_id for p, _ in received] == ["msg-0"] + [o.message_id for o in batch]
    assert received[-1][1] == big.body


@services
def test_a_batch_that_fails_to_encode_sends_nothing_and_the_next_is_confirmed(
    topology: Topology, publisher: ConfirmingPublisher, pika_channel: BlockingChannel
) -> None:
    """A message that cannot be encoded fails its whole batch before anything is written: none of it reaches
    RabbitMQ (the outbox keeps every row of it), and the next batch's confirms match its own messages."""
    settings = topology()
    publisher.publish([outgoing(0)])
    unencodable = outgoing(2, headers={"x-trace": object()})
    results = publisher.publish([outgoing(1), unencodable])
    assert [r.ok for r in results] == [False, False]
    after = [outgoing(n) for n in range(3, 13)]
    assert publisher.publish(after) == [PublishResult(True)] * len(after)
    received = take_all(pika_channel, Names(settings.prefix).sesam2_queue)
    assert [p.message_id for p, _ in received] == ["msg-0"] + [o.message_id for o in after]
