"""SESAM2 on RabbitMQ: consume sesam2.in, answer with the simulator, and go down when told to.

Each message is acknowledged only after all its answers are confirmed by RabbitMQ, so a simulator that
dies mid-way leaves the message to be answered again; the answers then carry the same ids (see
sesam2_sim) and the broker de-duplicates them. During an outage window the consumer is cancelled and
what it held unanswered goes back to the queue: nothing is consumed until the window ends.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.amqp.topology import Names
from adapters.harness import envelopes, wire
from adapters.harness.sesam2_sim import Sesam2Simulator
from broker.contract.dialect import ReadPolicy, read
from broker.model.codes import Side


@dataclass(frozen=True)
class Outage:
    """SESAM2 is down from `start` to `end`, seconds after the simulator started."""

    start: float
    end: float

    @classmethod
    def parse(cls, text: str) -> Outage:
        try:
            start, end = (float(part) for part in text.split(":"))
        except ValueError:
            raise ValueError(f"outage {text!r}: expected START:END in seconds, e.g. 10:40") from None
        if not 0 <= start < end:
            raise ValueError(f"outage {text!r}: START must be 0 or more and before END")
        return cls(start, end)

    def covers(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass
class Summary:
    received: Counter[str] = field(default_factory=Counter)  # answered (acked) inbound messages by type
    answers: Counter[str] = field(default_factory=Counter)  # answers published by type
    invalid: int = 0  # not a valid SESAM2-dialect message: acknowledged and counted, as SESAM2 would log it
    requeued: int = 0  # taken but handed back unanswered (outage, stop)
    outages: int = 0
    down: bool = False
    interrupted: bool = False  # stopped by Ctrl-C
    consumed_at: list[float] = field(default_factory=list)  # seconds from start at which each delivery arrived
    elapsed: float = 0.0

    @property
    def handled(self) -> int:
        return sum(self.received.values()) + self.invalid


def simulate(
    connection: Any,
    names: Names,
    simulator: Sesam2Simulator,
    *,
    answer_delay: float = 0.0,
    outages: Sequence[Outage] = (),
    duration: float | None = None,
    count: int | None = None,
    prefetch: int = 50,
    policy: ReadPolicy | None = None,
    on_change: Callable[[Summary], None] | None = None,
) -> Summary:
    """Play SESAM2 until `duration` seconds have passed or `count` messages are handled (or interrupted)."""
    consumer = wire.Consumer(connection, names.sesam2_queue, prefetch)
    publisher = wire.Publisher(connection)
    summary = Summary()
    pending: deque[wire.Received] = deque()
    started = time.monotonic()
    notify = on_change or (lambda _: None)

    def done() -> bool:
        t = time.monotonic() - started
        return (duration is not None and t >= duration) or (count is not None and summary.handled >= count)

    try:
        while not done():
            t = time.monotonic() - started
            down = any(o.covers(t) for o in outages)
            if down and consumer.consuming:
                consumer.stop()
                summary.requeued += _hand_back(consumer, pending)
                summary.outages, summary.down = summary.outages + 1, True
                notify(summary)
            elif not down and not consumer.consuming:
                consumer.start()
                summary.down = False
                notify(summary)
            for r in consumer.poll(0.02 if pending else 0.1):
                pending.append(r)
                summary.consumed_at.append(r.at - started)
            while pending and time.monotonic() - pending[0].at >= answer_delay and not done():
                _answer(pending.popleft(), consumer, publisher, names, simulator, policy, summary)
                notify(summary)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        # Taken but not answered: back to the queue, as a restarted SESAM2 would find it.
        summary.requeued += _hand_back(consumer, pending)
        consumer.stop()
        summary.elapsed = time.monotonic() - started
    return summary


def _answer(
    r: wire.Received,
    consumer: wire.Consumer,
    publisher: wire.Publisher,
    names: Names,
    simulator: Sesam2Simulator,
    policy: ReadPolicy | None,
    summary: Summary,
) -> None:
    parsed = read(r.body, policy)
    if parsed.message is None or not parsed.ok or parsed.dialect is None or parsed.dialect.name is not Side.SESAM2:
        consumer.ack(r.tag)
        summary.invalid += 1
        return
    answers = simulator.answer(parsed.message)
    try:
        for a in answers:
            publisher.publish(envelopes.address(Side.SESAM2, a, names))
    except wire.WireError:
        consumer.requeue(r.tag)  # answered again later, with the same answer ids
        raise
    consumer.ack(r.tag)
    summary.received[type(parsed.message).__name__] += 1
    summary.answers.update(type(a).__name__ for a in answers)


def _hand_back(consumer: wire.Consumer, pending: deque[wire.Received]) -> int:
    n = len(pending)
    if not consumer.open:  # the channel is gone: RabbitMQ requeues its unacknowledged messages by itself
        pending.clear()
        return n
    while pending:
        consumer.requeue(pending.popleft().tag)
    return n
