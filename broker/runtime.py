"""The worker: take a batch, commit it in one transaction, publish its outbox with confirms outstanding
together, then acknowledge the batch. A message is acknowledged only after its state is committed.

Faults:
- the database is unavailable: the batch is retried with backoff (tenacity) and not acknowledged, so
  nothing is lost; on shutdown the unacknowledged messages go back to their queue;
- a publish is nacked, unroutable or unconfirmed: the outbox row stays pending and the relay retries it
  with backoff; after `publish_attempts` tries it is parked for replay with its reason.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from broker.catalog import Catalog
from broker.config import Settings
from broker.contract.dialect import DIALECTS
from broker.envelope import Delivery, Exchange, Outgoing
from broker.model import messages as m
from broker.model.codes import Side
from broker.observability import metrics
from broker.observability.watch import QueueState, Transition, Watch
from broker.pipeline import Pipeline
from broker.recorder import Recorder
from broker.store import forecasts, queries
from broker.store.outbox import OutboxMarks
from broker.store.tables import OutboxRow
from broker.store.unit_of_work import Step, UnitOfWork
from broker.translation import derived_id

log = logging.getLogger(__name__)
IDLE_S = 0.25  # the longest an idle worker waits for a message before its loop looks at the relay
BLOCKED_POLL_S = 0.25  # how often a worker blocked by RabbitMQ looks whether it is unblocked
SETTLE_AFTER_S = 0.005  # a batch in flight is settled when nothing new arrived for this long
# Publish failures that say nothing about the message (the connection or channel went, no confirm came, the
# server nacked it): worth sending again at once. Unroutable is not: the relay's backoff and budget decide.
_LOST_ON_THE_WAY = ("connection", "channel", "timeout", "nacked")
AGAIN_EVERY_S = 1.0  # how often rows lost on the way are tried alone (no batch came to take them first)
MARKS_EVERY_S = 1.0  # confirmed outbox rows are handed to the recorder this often (broker/recorder.py)
GAUGE_INTERVAL_S = 5.0  # how often the store's gauges (backlog, parked, rejected) are refreshed
processed_log = structlog.get_logger("broker.processed")


class Received(Protocol):
    delivery: Delivery

    def ack(self) -> None: ...


class PublishOutcome(Protocol):
    @property
    def ok(self) -> bool: ...

    @property
    def error(self) -> str | None: ...


class InFlight(Protocol):
    """A sent batch: results() waits for its confirms."""

    def results(self) -> Sequence[PublishOutcome]: ...


class Transport(Protocol):
    """What the worker needs from AMQP (adapters/amqp/transport.py implements it)."""

    def receive(self, max_count: int, wait_s: float, idle_s: float) -> Sequence[Received]:
        """Up to `max_count` deliveries: wait up to `idle_s` for the first, then `wait_s` at most for the rest."""
        ...

    def publish(self, batch: Sequence[Outgoing]) -> Sequence[PublishOutcome]: ...

    def send(self, batch: Sequence[Outgoing]) -> InFlight: ...

    def acknowledge(self, batch: Sequence[Received]) -> None: ...

    def announce(self, batch: Sequence[Outgoing]) -> Sequence[PublishOutcome]:
        """Publish from the watch's thread, on a connection of its own (the worker's publisher is not shared)."""
        ...

    def connected(self) -> bool: ...

    def blocked(self) -> bool:
        """Whether RabbitMQ blocks publishing (connection.blocked: a memory or disk alarm)."""
        ...

    def partner_queues(self) -> dict[str, str]: ...

    def own_queues(self) -> list[str]:
        """The broker's own inbound queues and its dead-letter queue (watched for depth)."""
        ...

    def queue_counts(self, queues: list[str]) -> dict[str, tuple[int, int] | None]: ...

    def close(self) -> None: ...


def _transient(error: BaseException) -> bool:
    """Database faults that pass: a restart, a dropped connection, a lock timeout; and a message another worker
    stored first (see _stored_meanwhile)."""
    return (
        isinstance(error, OperationalError)
        or (isinstance(error, DBAPIError) and error.connection_invalidated)
        or _stored_meanwhile(error)
    )


def _stored_meanwhile(error: BaseException) -> bool:
    """The same message stored by another worker while this one had it in its batch: after a connection loss
    RabbitMQ redelivers the unacknowledged messages to the standby consumer, while the first worker may still
    be processing them. The retried batch finds the stored message and de-duplicates it, instead of the
    unique-key violation ending the worker. The same holds for an order two batches opened at once (a
    partition changing hands): the retry finds the order and correlates to it."""
    text = str(getattr(error, "orig", ""))
    return isinstance(error, IntegrityError) and any(
        key in text
        for key in (
            "ux_messages_original",  # PostgreSQL names the index
            "messages.message_id, messages.direction",  # SQLite names the columns
            "orders_pkey",
            "orders.customer_number, orders.order_id",
        )
    )


@dataclass
class Marks:
    """Publish outcomes not yet recorded in the outbox: rows confirmed, and rows failed with why."""

    sent: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class Committed:
    """A batch whose state is committed: what it sends, and what is logged and counted once it is settled."""

    batch: Sequence[Received]
    written: list[tuple[int, Outgoing]]  # outbox rows (id, message)
    taps: list[Outgoing]  # wire-tap events on hmc.events, best effort
    outcomes: list[dict[str, object]]
    stored: list[tuple[str, str, str]]  # direction, type, status of each stored message
    started: float
    handled_s: float  # from the start of handling to the commit


@dataclass
class Counters:
    batches: int = 0
    messages: int = 0
    published: int = 0
    publish_failures: int = 0


class Worker:
    def __init__(
        self,
        settings: Settings,
        transport: Transport,
        session_factory: sessionmaker[Session],
        stop: threading.Event | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.sessions = session_factory
        self.pipeline = Pipeline(settings, catalog)
        self.stop = stop or threading.Event()
        self.counters = Counters()
        self._last_relay = 0.0
        self.watch = Watch(settings.thresholds, clock=time.time)
        self.relay_grace_s = settings.confirm_timeout_s * 2 + 5
        self._marks = Marks()  # publish outcomes not yet recorded (nor handed to the recorder)
        self.recorder = Recorder(self._record_sent)  # marks confirmed rows sent, off this thread (in run())
        self._again: list[tuple[int, Outgoing]] = []  # rows whose publish was lost on the way: sent again first
        self._again_at = 0.0  # when sending them alone is tried next (time.monotonic())
        self._in_flight: tuple[Committed, InFlight] | None = None  # a committed batch whose confirms are due
        self._stop_observing = threading.Event()

    def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Work until stopped (SIGTERM sets `stop`) or `until()` holds; then finish and flush the outbox.

        The watch (partners' queues, the store's gauges) runs in a thread of its own: its queries and its
        connection to RabbitMQ take tens of milliseconds, which no message should wait for. What it has to
        announce on hmc.events goes out on a publisher of its own (Transport.announce).
        """
        observer = threading.Thread(target=self._observe, name="watch", daemon=True)
        observer.start()
        self.recorder.start()
        try:
            self.relay()
            while not self.stop.is_set() and not (until and until()):
                metrics.WORKER_PROGRESS.set(time.time())  # a worker stuck anywhere below stops this clock
                if self.transport.blocked():
                    # A memory or disk alarm: nothing would go out, and every outbox row would use up its
                    # publish attempts. Take no new work (the prefetched messages wait unacknowledged) until
                    # RabbitMQ unblocks.
                    metrics.AMQP_BLOCKED.set(1)
                    time.sleep(BLOCKED_POLL_S)
                    continue
                metrics.AMQP_BLOCKED.set(0)
                # With a batch in flight, a short wait: when nothing more comes, its confirms are collected and
                # it is acknowledged at once rather than after a whole idle wait.
                idle_s = SETTLE_AFTER_S if self._in_flight is not None else IDLE_S
                batch = self.transport.receive(self.settings.batch_size, self.settings.batch_wait_ms / 1000, idle_s)
                _note_waits(batch)
                if batch:
                    self.step(batch)
                else:
                    # Idle: finish the batch in flight (confirms, ack) but leave its publish outcomes to the next
                    # commit or the relay's tick within a second: a commit of their own cost a second fsync per
                    # message at a trickle (1.5-3 ms here), and a mark recorded late only matters after the
                    # relay's grace (relay_grace_s, tens of seconds).
                    self._settle_in_flight()
                    self._send_again()
                if time.monotonic() - self._last_relay >= MARKS_EVERY_S:
                    self._hand_over()
                    self.relay()
            # No basic.cancel first: with a single active consumer RabbitMQ would hand the partitions to the
            # standby at once, while the messages prefetched here stay unacknowledged until the connection
            # closes; the standby would take later messages of their orders first (a rolling restart saw 2
            # orders out of order). Closing the connection (transport.close) requeues them and hands over in one.
            self.settle()
            self.relay()
        finally:  # the watch never outlives the loop, whatever ended it
            self._stop_observing.set()
            observer.join(timeout=self.settings.confirm_timeout_s + 5)  # an announcement may be waiting to confirm
        self.transport.close()

    def readiness(self) -> dict[str, bool]:
        """What /readyz reports: can this worker reach RabbitMQ and its store right now?"""
        try:
            with self.sessions() as session:
                queries.ping(session)
            store_ok = True
        except (OperationalError, DBAPIError):
            store_ok = False
        return {"amqp": self.transport.connected(), "store": store_ok}

    # ---------------------------------------------------------------- one batch

    def process(self, batch: Sequence[Received]) -> None:
        """One batch from start to finish: commit, publish and wait for the confirms, acknowledge, record."""
        self.step(batch)
        self.settle()

    def step(self, batch: Sequence[Received]) -> None:
        """Commit a batch, then put its outbox on the wire without waiting for the confirms.

        The confirms of the batch sent before are collected after this commit: by then they have mostly
        arrived, so the worker does not stall on them. A batch is acknowledged once its state is committed
        and its outgoing messages are confirmed (or left to the relay): a worker killed before that leaves
        its messages to the standby, which finds them stored and sends their pending rows at once, ahead of
        later messages of the same orders.
        """
        committed = self._commit(batch)
        self._settle_in_flight()
        # Rows of the batch before whose publish failed on the way (a connection lost) go first: later messages
        # of the same orders are in this batch, and the relay's backoff would let them overtake.
        again, self._again = self._again, []
        committed.written = again + committed.written
        self._in_flight = (committed, self.transport.send([out for _, out in committed.written] + committed.taps))

    def settle(self) -> None:
        """Finish the batch in flight and record every publish outcome not yet recorded, here and now (the
        recorder stopped: at shutdown, and wherever batches are processed one by one)."""
        self._settle_in_flight()
        self._send_again(now=True)
        self._marks.sent[:0] = self.recorder.take_back()
        self._record_now()

    def _hand_over(self) -> None:
        """Once a second, before the relay publishes (the batch in flight settled first: a publish waits for its
        confirms): confirmed rows to the recorder, and failures no batch has recorded (idle) now, which schedules
        their next attempt."""
        self._settle_in_flight()
        self._send_again()
        if self._marks.sent:
            self.recorder.hand(self._marks.sent)
            self._marks.sent = []
        self._record_now()

    def _record_now(self) -> None:
        """The publish outcomes this thread holds, recorded in a transaction of their own."""
        if not self._marks.sent and not self._marks.failed:
            return
        for attempt in self._db_retrying():
            with attempt, self.sessions() as session:
                self._record(OutboxMarks(session), self._marks.sent, self._marks.failed)
                session.commit()
        self._marks = Marks()

    def _record_sent(self, ids: list[int]) -> None:
        """The recorder's work (its thread): confirmed rows marked sent, their messages delivered, in a
        transaction of its own, retried a few times over a store that comes back."""
        retrying = Retrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential(multiplier=0.2, max=2),
            stop=stop_after_attempt(4),
            reraise=True,
        )
        for attempt in retrying:
            with attempt, self.sessions() as session:
                self._record(OutboxMarks(session), ids, [])
                session.commit()

    def _commit(self, batch: Sequence[Received]) -> Committed:
        """Handle and commit a batch in one transaction, with the failed publishes waiting to be recorded (their
        next attempt is scheduled by it; confirmed rows go to the recorder).

        A mark lost in a crash only means the relay publishes the row again, after its grace, under the same
        message id, which consumers de-duplicate.
        """
        started = time.perf_counter()
        deliveries = [r.delivery for r in batch]
        for attempt in self._db_retrying():
            with attempt, UnitOfWork(self.sessions, self.relay_grace_s) as uow:
                self.pipeline.handle(deliveries, uow)
                marks = self._marks if self._marks.failed else Marks()
                if marks.sent or marks.failed:
                    self._record(uow.publish_marks, marks.sent, marks.failed)
                uow.commit()
                if marks.sent or marks.failed:
                    self._marks = Marks()
                return Committed(
                    handled_s=time.perf_counter() - started,
                    batch=batch,
                    written=_pending_of_repeats(uow, self._held()) + uow.outbox,
                    taps=_wire_tap(uow) if self.settings.wire_tap else [],
                    outcomes=_outcomes(uow),
                    stored=[(m.direction, m.message_type or "unknown", m.status) for m in uow.messages],
                    started=started,
                )
        raise AssertionError("unreachable: the retrying loop returns or raises")

    def _held(self) -> set[int]:
        """Rows pending in the store that this worker has in hand: on the wire, confirmed with their marks not yet
        committed, or lost on the way and to be sent again first. Neither the relay nor a repeat sends them."""
        in_flight = {row_id for row_id, _ in self._in_flight[0].written} if self._in_flight is not None else set()
        again = {row_id for row_id, _ in self._again}
        return in_flight | again | set(self._marks.sent) | self.recorder.unrecorded()

    def _settle_in_flight(self) -> None:
        """Collect the confirms of the batch in flight, acknowledge its messages, keep its outcomes."""
        if self._in_flight is None:
            return
        committed, in_flight = self._in_flight
        self._in_flight = None
        results = in_flight.results()[: len(committed.written)]
        marks = self._count(committed.written, results)
        self._keep(committed.written, marks)
        self.transport.acknowledge(committed.batch)  # only now: every message's state is committed and sent
        self.counters.batches += 1
        self.counters.messages += len(committed.batch)
        for fields in committed.outcomes:  # after the commit and the acknowledgement: what the log says is true
            processed_log.info("processed", **fields)
        metrics.BATCH_SIZE.observe(len(committed.batch))
        for direction, message_type, status in committed.stored:
            metrics.MESSAGES.labels(direction, message_type, status).inc()
            metrics.PROCESSING_SECONDS.observe(committed.handled_s)
        if len(committed.stored) < len(committed.batch):
            metrics.MESSAGES.labels("any", "any", "duplicate").inc(len(committed.batch) - len(committed.stored))

    def _keep(self, written: list[tuple[int, Outgoing]], marks: Marks) -> None:
        """Keep a publish's outcomes: confirmed rows for the recorder (or settle()), failures to be recorded, and
        rows lost on the way at the head of the line, ahead of anything this worker sends next. A loss on the way
        is not an attempt: it says nothing about the message, and counted, a RabbitMQ outage of a few seconds
        would park what the worker held (a crash leaves such rows to the relay, after its grace)."""
        lost = {row_id for row_id, error in marks.failed if error.startswith(_LOST_ON_THE_WAY)}
        self._marks.sent.extend(marks.sent)
        self._marks.failed.extend((row_id, error) for row_id, error in marks.failed if row_id not in lost)
        self._again[:0] = [(row_id, out) for row_id, out in written if row_id in lost]

    def _send_again(self, *, now: bool = False) -> None:
        """Publish, and wait for, the rows whose publish failed on the way (see step()), when no batch takes them
        first: idle, or before the relay. What fails on the way again stays first in line, however often: left
        to the relay's backoff, a later message of its order, sent meanwhile, overtook it (CI saw it under a
        memory alarm). Sent alone they are tried once a second (`now`: at once, by settle()).
        Not while RabbitMQ blocks publishing (an alarm): that would only wait out the confirm timeout; they go
        first once unblocked."""
        if not self._again or self.transport.blocked() or (not now and time.monotonic() < self._again_at):
            return
        again, self._again = self._again, []
        self._keep(again, self._count(again, self.transport.publish([out for _, out in again])))
        self._again_at = time.monotonic() + AGAIN_EVERY_S

    def _db_retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential(multiplier=0.2, max=10),
            stop=lambda state: self.stop.is_set() and state.attempt_number > 1,
            before_sleep=self._store_unavailable,
            reraise=True,
        )

    def _store_unavailable(self, state: RetryCallState) -> None:
        metrics.STORE_AVAILABLE.set(0)
        log.warning("database unavailable, retrying batch", extra={"attempt": state.attempt_number})

    # ---------------------------------------------------------------- outbox

    def relay(self) -> None:
        """Publish outbox rows that are due: left by a crash, or failed before and now retried."""
        self._last_relay = time.monotonic()
        try:
            for attempt in Retrying(retry=retry_if_exception(_transient), stop=stop_after_attempt(3), reraise=True):
                with attempt, UnitOfWork(self.sessions) as uow:
                    held = self._held()
                    rows = [r for r in uow.publish_marks.due(self.settings.batch_size * 5) if r.id not in held]
                    if rows:
                        self._publish([(row.id, _outgoing(row)) for row in rows], uow)
                    uow.commit()
        except (OperationalError, DBAPIError):
            log.warning("outbox relay skipped: database unavailable")

    def _observe(self) -> None:
        """The watch's thread: the store's gauges every GAUGE_INTERVAL_S, the partners every watch_interval_s."""
        next_gauges = next_watch = 0.0
        tick = min(GAUGE_INTERVAL_S, self.settings.watch_interval_s)
        while not (self.stop.is_set() or self._stop_observing.is_set()):
            if time.monotonic() >= next_gauges:
                next_gauges = time.monotonic() + GAUGE_INTERVAL_S
                try:
                    self._gauges()
                except Exception:  # as below: a failed look is logged, and the watch goes on
                    log.exception("store gauges failed; trying again in %.0f s", GAUGE_INTERVAL_S)
            if time.monotonic() >= next_watch:
                next_watch = time.monotonic() + self.settings.watch_interval_s
                try:
                    self.look_at_partners()
                except Exception:  # the watch must never end silently: log, and look again next time
                    log.exception("partner watch failed; trying again in %.0f s", self.settings.watch_interval_s)
            self._stop_observing.wait(tick)

    def look_at_partners(self) -> list[Transition]:
        """Is each partner consuming? Changes of level go to the log, the metrics and hmc.events."""
        partners = self.transport.partner_queues()
        own = self.transport.own_queues()
        counts = self.transport.queue_counts([*partners.values(), *own])
        for queue_name in own:  # the broker's inbound queues and dead letters: depth and consumers only
            if (found_own := counts.get(queue_name)) is not None:
                metrics.QUEUE_DEPTH.labels(queue_name).set(found_own[0])
                metrics.QUEUE_CONSUMERS.labels(queue_name).set(found_own[1])
        transitions = []
        forecasts = self._forecasts()
        for partner, queue_name in partners.items():
            found = counts.get(queue_name)
            if found is None:
                continue
            messages, consumers = found
            age = self._oldest_age(partner, messages) if messages else 0.0
            state = QueueState(messages, consumers, age)
            transition = self.watch.observe(partner, queue_name, state, forecasts.get(partner))
            if transition is not None:
                transitions.append(transition)
        if transitions and self.settings.worker_index == 0:  # one worker speaks for all on hmc.events
            self.transport.announce([_outage_event(t) for t in transitions])
        return transitions

    def _forecasts(self) -> dict[str, float]:
        """Operators' outage forecasts not yet passed (one read per look of the watch), as epoch seconds."""
        try:
            with self.sessions() as session:
                found = forecasts.pending(session, datetime.now(UTC))
        except (OperationalError, DBAPIError):
            return {}
        return {partner: back_by.timestamp() for partner, back_by in found.items()}

    def _oldest_age(self, partner: str, waiting: int) -> float:
        try:
            with self.sessions() as session:
                return queries.oldest_waiting_age(session, partner, waiting)
        except (OperationalError, DBAPIError):
            return 0.0

    def _gauges(self) -> None:
        """Whether RabbitMQ and the store are usable, and the store's view for operations: backlog, parked,
        recent rejections (cheap indexed counts)."""
        metrics.AMQP_AVAILABLE.set(1 if self.transport.connected() else 0)
        try:
            with self.sessions() as session:
                found = queries.gauges(session)
        except (OperationalError, DBAPIError):
            metrics.STORE_AVAILABLE.set(0)
            return
        metrics.STORE_AVAILABLE.set(1)
        metrics.OUTBOX_BACKLOG.set(found.backlog)
        metrics.PARKED.set(found.parked)
        metrics.REJECTED_LAST_HOUR.set(found.rejected_last_hour)
        metrics.REPLAYS_LAST_HOUR.set(found.replays_last_hour)

    def _publish(self, written: list[tuple[int, Outgoing]], uow: UnitOfWork) -> None:
        """Publish outbox rows and wait for the confirms; record the outcome in `uow`."""
        if not written:
            return
        results = self.transport.publish([out for _, out in written])
        marks = self._count(written, results)
        self._record(uow.publish_marks, marks.sent, marks.failed)

    def _count(self, written: list[tuple[int, Outgoing]], results: Sequence[PublishOutcome]) -> Marks:
        """Count a publish's outcomes (metrics, counters) and sort them into confirmed and failed rows."""
        marks = Marks()
        for (row_id, out), result in zip(written, results, strict=True):
            if result.ok:
                marks.sent.append(row_id)
                metrics.PUBLISHED.labels(out.exchange.value or "direct").inc()
            else:
                marks.failed.append((row_id, result.error or "failed"))
                metrics.PUBLISH_FAILURES.labels((result.error or "failed").split(":")[0]).inc()
        self.counters.published += len(marks.sent)
        self.counters.publish_failures += len(marks.failed)
        return marks

    def _record(self, marks: OutboxMarks, sent: list[int], failed: list[tuple[int, str]]) -> None:
        for row in marks.record(sent, failed, self.settings.publish_attempts):
            log.error("outbox row parked", extra={"message_id": row.message_id, "error": row.last_error})


def prepare_process() -> None:
    """For a process that runs a worker, before its loop: build now what the first message of each type would
    otherwise wait for (both dialects' bindings, every version's plans, the XSDs), then take everything made so
    far out of the garbage collector's sight.

    A full collection walks every tracked object: at start that is about 120,000 (modules, schemas, compiled
    plans, SQLAlchemy's tables) and a full walk paused the worker 50-170 ms, several times a minute under load,
    which was the bench's p99 at 200 msg/s. Frozen (gc.freeze, after a collection so no garbage is kept), they
    are never walked again, and a full collection only sees what the run itself keeps.
    """
    for dialect in DIALECTS.values():
        dialect.compiled_schema  # noqa: B018 (built on first use)
        for version in m.SCHEMA_VERSIONS:
            dialect.binding_for(version)
    gc.collect()
    gc.freeze()


def _note_waits(batch: Sequence[Received]) -> None:
    """How long the oldest message of the batch, per side, had waited in its queue (metrics.INBOUND_WAIT)."""
    now = time.time()
    waited = dict.fromkeys(Side, 0.0)
    for received in batch:
        d = received.delivery
        if d.published_at is not None and d.replay is None:
            waited[d.side] = max(waited[d.side], now - d.published_at)
    for side, seconds in waited.items():
        metrics.INBOUND_WAIT.labels(side.value).set(round(seconds, 3))


def _pending_of_repeats(uow: UnitOfWork, in_flight: set[int]) -> list[tuple[int, Outgoing]]:
    """Outbox rows still pending of messages in this batch that arrived again, to publish now, ahead of the
    batch's own rows. A worker killed between its commit and its publish leaves them pending; its messages come
    back to the standby worker, which recognises them and sends nothing new. Left to the relay's grace, they
    would reach SESAM2 after later messages of the same order, which the standby publishes at once."""
    again = {event.message_pk for event in uow.events if event.stage == "dedupe"}
    if not again:
        return []
    rows = uow.publish_marks.pending_of(again)
    # A repeat within the batch: its rows go out with the batch's. A repeat of the batch still in flight: its
    # rows are on the wire already, their confirms not yet recorded.
    skip = {row_id for row_id, _ in uow.outbox} | in_flight
    return [(row.id, _outgoing(row)) for row in rows if row.id not in skip]


def _outcomes(uow: UnitOfWork) -> list[dict[str, object]]:
    """One log line per message: its ids, type, customer and the last stage with its outcome."""
    last: dict[int, Step] = {}
    for event in uow.events:
        last[event.message_pk] = event
    return [
        {
            "message_id": m.message_id,
            "correlation_id": m.correlation_id,
            "type": m.message_type,
            "customer": m.customer_number,
            "direction": m.direction,
            "stage": last[m.id].stage if m.id in last else "store",
            "outcome": last[m.id].outcome if m.id in last else m.status,
            "status": m.status,
        }
        for m in uow.messages
    ]


def _wire_tap(uow: UnitOfWork) -> list[Outgoing]:
    """One monitoring event per message: ids, type, stages and timings; no payload, no patient data."""
    steps: dict[int, list[Step]] = {}
    for event in uow.events:
        steps.setdefault(event.message_pk, []).append(event)
    out = []
    for message in uow.messages:
        mine = steps.get(message.id, [])
        last = mine[-1] if mine else None
        body = {
            "message_id": message.message_id,
            "correlation_id": message.correlation_id,
            "type": message.message_type,
            "direction": message.direction,
            "customer": message.customer_number,
            "status": message.status,
            "stages": [{"stage": e.stage, "outcome": e.outcome, "ms": e.duration_ms} for e in mine],
        }
        out.append(
            Outgoing(
                exchange=Exchange.EVENTS,
                routing_key=f"{last.stage}.{last.outcome}" if last else f"store.{message.status}",
                body=json.dumps(body).encode(),
                message_id=derived_id(message.message_id, f"event/{message.id}"),
                message_type="ProcessingEvent",
                correlation_id=message.correlation_id,
                content_type="application/json",
            )
        )
    return out


def _outage_event(t: Transition) -> Outgoing:
    body = json.dumps(
        {"partner": t.partner, "level": t.level.value, "previous": t.previous.value, "outage_s": round(t.outage_s)}
    ).encode()
    return Outgoing(
        exchange=Exchange.EVENTS,
        routing_key=f"outage.{t.level.value}",
        body=body,
        message_id=str(uuid.uuid4()),
        message_type="PartnerOutage",
        content_type="application/json",
    )


def _outgoing(row: OutboxRow) -> Outgoing:
    headers = {k: str(v) for k, v in row.headers.items() if k != "schema_version"}
    return Outgoing(
        exchange=Exchange(row.exchange),
        routing_key=row.routing_key,
        body=row.body,
        message_id=row.message_id,
        message_type=row.message_type,
        correlation_id=row.correlation_id,
        schema_version=str(row.headers.get("schema_version", "1.0")),
        timestamp=int(row.created_at.replace(tzinfo=row.created_at.tzinfo or UTC).timestamp()),
        headers=headers,
    )
