"""Fakes of the broker's two ports: the AMQP transport (RabbitMQ stood in for, so that "exactly once" is counted
on what the worker handed to AMQP) and the unit of work (the store in memory, for handler tests)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from re import Pattern
from typing import Any

from broker.envelope import Delivery, Outgoing
from broker.store.orders import Order
from broker.store.prescriber_register import Sighting
from broker.store.tables import BufferStockRow
from broker.store.unit_of_work import NewMessage, Original, UnitOfWork, patient_ref


@dataclass
class Result:
    ok: bool
    error: str | None = None


@dataclass
class Sent:
    """A batch the fake transport took: its results are known at once, and collecting them ends its flight."""

    outcomes: list[Result]
    transport: FakeTransport | None = None

    def results(self) -> list[Result]:
        if self.transport is not None and self.transport.in_flight is self:
            self.transport.in_flight = None
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
    is_blocked: bool = False  # RabbitMQ's connection.blocked (a memory or disk alarm)
    published: list[Outgoing] = field(default_factory=list)
    acked: list[str] = field(default_factory=list)
    in_flight: Sent | None = None  # as the real publisher: one batch in flight, its results collected before more

    def receive(self, max_count: int, wait_s: float, idle_s: float) -> Sequence[Taken]:
        return []

    def publish(self, batch: Sequence[Outgoing]) -> list[Result]:
        return self.send(batch).results()

    def send(self, batch: Sequence[Outgoing]) -> Sent:
        if self.in_flight is not None:  # adapters/amqp/publisher.py raises the same
            raise RuntimeError("a batch is in flight: collect its results() before sending another")
        if not self.publish_ok:
            outcomes = [Result(False, "unroutable: NO_ROUTE") for _ in batch]
        else:
            self.published.extend(batch)
            outcomes = [Result(True) for _ in batch]
        self.in_flight = Sent(outcomes, self)
        return self.in_flight

    def announce(self, batch: Sequence[Outgoing]) -> list[Result]:
        """The watch's publisher, a connection of its own: beside whatever batch is in flight."""
        if not self.publish_ok:
            return [Result(False, "unroutable: NO_ROUTE") for _ in batch]
        self.published.extend(batch)
        return [Result(True) for _ in batch]

    def acknowledge(self, batch: Sequence[Taken]) -> None:
        for received in batch:
            received.ack()

    def connected(self) -> bool:
        return True

    def blocked(self) -> bool:
        return self.is_blocked

    def partner_queues(self) -> dict[str, str]:
        return {}

    def own_queues(self) -> list[str]:
        return []

    def queue_counts(self, queues: list[str]) -> dict[str, tuple[int, int] | None]:
        return {}

    def close(self) -> None: ...


# ---------------------------------------------------------------- the store, in memory


class FakeOrders:
    """The order view's repository in a dict (the real one: broker/store/orders.py)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Order] = {}

    def load(self, keys: Iterable[tuple[str, str]]) -> None: ...

    def get(self, customer: str, order_id: str) -> Order | None:
        return self.rows.get((customer, order_id))

    def add(self, **values: Any) -> Order:
        stamp = datetime.now(UTC)
        values = {"sesam2_order_number": None, "lines": {}, "opened_by": None, **values}
        row = Order(created_at=stamp, updated_at=stamp, **values)
        self.rows[(row.customer_number, row.order_id)] = row
        return row


class FakeArticles:
    """The article register in a dict (the real one: broker/store/articles.py); version 0: no register."""

    def __init__(self) -> None:
        self.articles: dict[str, Any] = {}
        self.versions = 0

    def version(self) -> int:
        return self.versions

    def all(self) -> list[Any]:
        return list(self.articles.values())

    def put(self, articles: Iterable[Any], by: str) -> int:
        written = {a.article_number: a for a in articles}
        self.articles.update(written)
        self.versions += 1
        return len(written)


class FakeBufferStock:
    """Buffer stock, its ledger and replenishments in lists (the real one: broker/store/buffer_stock.py)."""

    def __init__(self) -> None:
        self.stock: dict[tuple[str, str, str], BufferStockRow] = {}
        self.movements: list[dict[str, Any]] = []
        self.replenishments: list[dict[str, Any]] = []

    def lock(self, fresh: Sequence[dict[str, Any]], keys: Sequence[tuple[str, str, str]]) -> list[BufferStockRow]:
        for values in fresh:
            key = (values["customer_number"], values["buffer_store_id"], values["article_number"])
            self.stock.setdefault(key, BufferStockRow(**values))
        return [self.stock[k] for k in sorted(keys)]

    def get(self, key: tuple[str, str, str]) -> BufferStockRow | None:
        return self.stock.get(key)

    def applied(self, kind: str, message_id: str, article: str) -> bool:
        return any((m["kind"], m["message_id"], m["article"]) == (kind, message_id, article) for m in self.movements)

    def moved_since(self, stock: BufferStockRow, at: datetime) -> int:
        return sum(
            m["quantity"] for m in self.movements if m["key"] == _key(stock) and m["kind"] != "count" and m["at"] > at
        )

    def record_movement(self, stock: BufferStockRow, kind: str, quantity: int, message_id: str, at: datetime) -> None:
        self.movements.append(
            {
                "key": _key(stock),
                "article": stock.article_number,
                "kind": kind,
                "quantity": quantity,
                "message_id": message_id,
                "at": at,
            }
        )

    def replenishment_open(self, stock: BufferStockRow) -> bool:
        return any(r["key"] == _key(stock) and r["status"] == "open" for r in self.replenishments)

    def open_replenishment(self, **values: Any) -> None:
        key = (values["customer_number"], values["buffer_store_id"], values["article_number"])
        self.replenishments.append({**values, "key": key, "status": "open"})

    def close_replenishments(self, customer: str, order_id: str, status: str, by_message: str) -> list[str]:
        closed = []
        for r in self.replenishments:
            if (r["customer_number"], r["order_id"], r["status"]) == (customer, order_id, "open"):
                r["status"] = status
                closed.append(r["article_number"])
        return closed


def _key(stock: BufferStockRow) -> tuple[str, str, str]:
    return (stock.customer_number, stock.buffer_store_id, stock.article_number)


class FakeInvoices:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def kept(self, message_id: str) -> bool:
        return any(r["message_id"] == message_id for r in self.rows)

    def add(self, **values: Any) -> None:
        self.rows.append(values)


class FakePrescribers:
    def __init__(self) -> None:
        self.seen: list[Sighting] = []

    def add(self, sightings: Iterable[Sighting]) -> None:
        self.seen.extend(sightings)


class FakeUnitOfWork(UnitOfWork):
    """The unit of work with its SQL replaced by dicts and lists (Cosmic Python's FakeUnitOfWork): the pipeline
    and every handler run on it in memory, in milliseconds. What is not SQL (steps, statuses, the outbox queue,
    replay settling) is the real UnitOfWork's own code."""

    def __init__(self) -> None:
        super().__init__(session_factory=None, relay_grace_s=30.0)  # type: ignore[arg-type]
        self.orders = FakeOrders()  # type: ignore[assignment]
        self.articles = FakeArticles()  # type: ignore[assignment]
        self.buffer_stock = FakeBufferStock()  # type: ignore[assignment]
        self.invoices = FakeInvoices()  # type: ignore[assignment]
        self.prescribers = FakePrescribers()  # type: ignore[assignment]
        self.stored: list[NewMessage] = []  # every message row of every batch, as the store would keep them
        self.sent: list[Outgoing] = []  # every outbox row, in the order written
        self.committed = 0

    def __enter__(self) -> FakeUnitOfWork:
        self.messages, self.events, self.outbox, self._written = [], [], [], 0
        return self

    def __exit__(self, *exc: object) -> None: ...

    def commit(self) -> None:
        self.flush()
        self.committed += 1

    def payload_of(self, message_id: str) -> bytes | None:
        found = [r for r in (*self.stored, *self.messages) if r.message_id == message_id and r.replay_of is None]
        return found[0].payload if found else None

    def flush(self) -> None:
        for row in self.messages:
            if not row.id:
                self.stored.append(row)
                row.id = len(self.stored)
        for queued in self._queued:
            self.sent.append(queued.out)
            self.outbox.append((len(self.sent), queued.out))
        self._queued = []

    def originals(self, direction: str, message_ids: Iterable[str]) -> dict[str, Original]:
        wanted = set(message_ids)
        return {
            r.message_id: Original(r.id, r.message_id)
            for r in self.stored
            if r.direction == direction and r.message_id in wanted and r.replay_of is None
        }

    def patient_ref(self, patient_id: str, reserve_patterns: Sequence[Pattern[str]]) -> str:
        return patient_ref(b"fake store key", patient_id, reserve_patterns)

    def steps_of(self, row: NewMessage) -> list[tuple[str, str]]:
        return [(s.stage, s.outcome) for s in self.events if s.message.id == row.id]
