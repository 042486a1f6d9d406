"""A fake transport for the worker: RabbitMQ stood in for, so that "exactly once" is counted on what the
worker handed to AMQP (tests/test_runtime_unit.py, tests/replay/)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from broker.envelope import Delivery, Outgoing


@dataclass
class Result:
    ok: bool
    error: str | None = None


@dataclass
class Sent:
    """A batch the fake transport took: its results are known at once."""

    outcomes: list[Result]

    def results(self) -> list[Result]:
        return self.outcomes


@dataclass
class Taken:
    """A delivery as the transport hands it to the worker; its acknowledgement is noted in `acked`."""

    delivery: Delivery
    acked: list[str] = field(default_factory=list)

    def ack(self) -> None:
        self.acked.append(self.delivery.routing_key)


@dataclass
class FakeTransport:
    """Stands in for RabbitMQ: what was published, what was acknowledged, and whether publishing works."""

    publish_ok: bool = True
    published: list[Outgoing] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)

    def receive(self, max_count: int, wait_s: float) -> Sequence[Taken]:
        return []

    def publish(self, batch: Sequence[Outgoing]) -> list[Result]:
        if not self.publish_ok:
            return [Result(False, "unroutable: NO_ROUTE") for _ in batch]
        self.published.extend(batch)
        return [Result(True) for _ in batch]

    def send(self, batch: Sequence[Outgoing]) -> Sent:
        return Sent(self.publish(batch))

    def stop_consuming(self) -> None: ...

    def connected(self) -> bool:
        return True

    def partner_queues(self) -> dict[str, str]:
        return {}

    def queue_counts(self, queues: list[str]) -> dict[str, tuple[int, int] | None]:
        return {}

    def close(self) -> None: ...
