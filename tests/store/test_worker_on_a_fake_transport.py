"""The worker's bookkeeping with a fake transport: acknowledgement after commit, retries and parking."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select, update

from broker.bootstrap import store as open_store
from broker.config import Customer, Settings
from broker.contract.dialect import read
from broker.envelope import Delivery, Exchange, Outgoing
from broker.model import messages as m
from broker.model.codes import Side
from broker.runtime import Worker
from broker.store.tables import MessageRow, OutboxRow
from tests.support.deliveries import customer_delivery
from tests.support.fakes import FakeTransport, Result, Sent, Taken
from tests.support.fixtures import Store

ORDER = Path(__file__).resolve().parents[1] / "fixtures/customer/valid/CustomerOrder-patient-urgent.xml"


def _order(n: int) -> Delivery:
    """The fixture's order under a message id and an order id of its own."""
    base = read(ORDER.read_bytes()).message
    assert isinstance(base, m.CustomerOrder)
    header = dataclasses.replace(base.header, message_id=str(uuid.UUID(int=n + 1)))
    return customer_delivery(dataclasses.replace(base, header=header, order_id=f"ORD-{n}"))


@pytest.fixture
def settings(store: Store) -> Settings:
    return Settings(db_url=store.url, customers=(Customer("1002"),), publish_attempts=3)


def test_a_batch_is_acknowledged_after_commit_and_delivered_once_published(settings: Settings) -> None:
    transport = FakeTransport()
    worker = Worker(settings, transport, open_store(settings))
    worker.process(
        [
            Taken(
                Delivery(side=Side.CUSTOMER, body=ORDER.read_bytes(), routing_key="1002.CustomerOrder"), transport.acked
            )
        ]
    )
    assert transport.acked == ["1002.CustomerOrder"]
    assert [o.message_type for o in transport.published] == ["CustomerOrder", "ProcessingEvent"]
    assert transport.published[1].exchange is Exchange.EVENTS, "the wire tap goes out in the same confirm window"
    with worker.sessions() as session:
        assert session.scalar(select(MessageRow.status)) == "delivered"
        assert session.scalar(select(OutboxRow.status)) == "sent"


def test_failed_publishes_are_retried_by_the_relay_and_parked_after_the_budget(settings: Settings) -> None:
    transport = FakeTransport(publish_ok=False)
    worker = Worker(settings, transport, open_store(settings))
    worker.process(
        [
            Taken(
                Delivery(side=Side.CUSTOMER, body=ORDER.read_bytes(), routing_key="1002.CustomerOrder"), transport.acked
            )
        ]
    )
    assert transport.acked == ["1002.CustomerOrder"], "the state is committed: the message is safe in the store"
    for _ in range(settings.publish_attempts):
        with worker.sessions() as session:  # make the retry due now instead of after its backoff
            session.execute(update(OutboxRow).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
            session.commit()
        worker.relay()
    with worker.sessions() as session:
        row = session.scalars(select(OutboxRow)).one()
        message = session.scalars(select(MessageRow)).one()
    assert (row.status, row.attempts, row.last_error) == ("parked", 3, "unroutable: NO_ROUTE")
    assert message.status == "parked" and "unroutable" in (message.last_error or "")
    transport.publish_ok = True
    worker.relay()
    assert [o.message_type for o in transport.published] == [], "a parked row waits for an operator's replay"


def test_a_relay_after_recovery_delivers_what_was_pending(settings: Settings) -> None:
    transport = FakeTransport(publish_ok=False)
    worker = Worker(settings, transport, open_store(settings))
    worker.process(
        [
            Taken(
                Delivery(side=Side.CUSTOMER, body=ORDER.read_bytes(), routing_key="1002.CustomerOrder"), transport.acked
            )
        ]
    )
    transport.publish_ok = True
    with worker.sessions() as session:
        session.execute(update(OutboxRow).values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    worker.relay()
    assert [o.message_type for o in transport.published] == ["CustomerOrder"]  # the tap was best effort
    with worker.sessions() as session:
        assert session.scalar(select(MessageRow.status)) == "delivered"


def test_each_message_leaves_one_log_line_with_its_ids_stage_and_outcome(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import structlog
    from structlog.testing import capture_logs

    from broker import runtime

    transport = FakeTransport()
    worker = Worker(settings, transport, open_store(settings))
    delivery = Delivery(side=Side.CUSTOMER, body=ORDER.read_bytes(), routing_key="1002.CustomerOrder")
    with capture_logs() as captured:
        # The module's logger caches its configuration on first use (an earlier test may have used it),
        # so capture through a fresh one.
        monkeypatch.setattr(runtime, "processed_log", structlog.get_logger("broker.processed"))
        worker.process([Taken(delivery, transport.acked)])
    (line,) = [entry for entry in captured if entry["event"] == "processed"]
    assert (line["type"], line["customer"], line["stage"], line["outcome"]) == (
        "CustomerOrder",
        "1002",
        "translate",
        "ok",
    )
    assert line["message_id"] and line["correlation_id"]


def test_a_message_another_worker_stored_first_retries_the_batch_instead_of_ending_the_worker(
    settings: Settings,
) -> None:
    """After a connection loss RabbitMQ redelivers a worker's unacknowledged messages to the standby worker;
    whichever stores the message second hits the unique key, and must retry (and de-duplicate), not die."""
    from sqlalchemy.exc import IntegrityError

    from broker.runtime import _transient

    sessions = open_store(settings)
    stamp = datetime.now(UTC)

    def row(message_id: str) -> MessageRow:
        return MessageRow(
            message_id=message_id, direction="inbound", status="received", received_at=stamp, updated_at=stamp
        )

    with sessions() as session:
        session.add(row("m-1"))
        session.commit()
        session.add(row("m-1"))
        with pytest.raises(IntegrityError) as stored_twice:
            session.commit()
        session.rollback()
        session.add(OutboxRow(id=1, message_pk=1, exchange="x", routing_key="k", body=b"", message_id="o"))
        with pytest.raises(IntegrityError) as other:
            session.commit()
    assert _transient(stored_twice.value)
    assert not _transient(other.value), "any other integrity error is a bug, not a fault that passes"


def test_a_repeat_of_a_message_whose_publish_never_happened_goes_out_before_the_next_of_its_order(
    settings: Settings,
) -> None:
    """kill -9 between a batch's commit and its publish: its rows stay pending. When the standby worker gets
    the messages again, with the next message of the same order, the pending ones go out first."""
    import dataclasses

    from broker.contract.dialect import DIALECTS, read
    from broker.model.codes import Side

    base = read(ORDER.read_bytes()).message
    assert base is not None
    second = dataclasses.replace(
        base,
        header=dataclasses.replace(base.header, message_id="00000000-0000-4000-8000-000000000002"),
        order_id="second-of-the-order",
    )
    sessions = open_store(settings)
    killed = FakeTransport(publish_ok=False)  # the worker that died: its publish never happened
    Worker(settings, killed, sessions).process(
        [Taken(Delivery(side=Side.CUSTOMER, body=ORDER.read_bytes(), routing_key="1002.CustomerOrder"), [])]
    )
    standby = FakeTransport()
    Worker(settings, standby, sessions).process(
        [
            Taken(Delivery(side=Side.CUSTOMER, body=ORDER.read_bytes(), routing_key="1002.CustomerOrder"), []),
            Taken(
                Delivery(
                    side=Side.CUSTOMER, body=DIALECTS[Side.CUSTOMER].render(second), routing_key="1002.CustomerOrder"
                ),
                [],
            ),
        ]
    )
    orders = [o for o in standby.published if o.message_type == "CustomerOrder"]
    assert [read(o.body).message.order_id for o in orders] == [base.order_id, "second-of-the-order"]  # type: ignore[union-attr]


def test_a_resend_of_a_message_still_in_flight_is_not_published_again(settings: Settings) -> None:
    """Pipelined: batch N+1 is committed before batch N's confirms are recorded. A resend of N's message in N+1
    is a repeat, and N's rows, on the wire already, must not go out a second time."""
    transport = FakeTransport()
    worker = Worker(settings, transport, open_store(settings))
    delivery = Delivery(side=Side.CUSTOMER, body=ORDER.read_bytes(), routing_key="1002.CustomerOrder")
    worker.step([Taken(delivery, transport.acked)])
    worker.step([Taken(delivery, transport.acked)])  # the same message again, while the first is in flight
    worker.settle()
    orders = [o for o in transport.published if o.message_type == "CustomerOrder"]
    assert len(orders) == 1
    assert transport.acked == ["1002.CustomerOrder", "1002.CustomerOrder"]
    with worker.sessions() as session:
        assert session.scalar(select(OutboxRow.status)) == "sent"


def test_a_resend_of_a_message_confirmed_but_not_yet_marked_is_not_published_again(settings: Settings) -> None:
    """Confirmed rows are marked sent later (by the recorder, once a second): a resend arriving before that finds
    its row still pending, and must not send it a second time."""
    transport = FakeTransport()
    worker = Worker(settings, transport, open_store(settings))
    worker.step([Taken(_order(1), transport.acked)])
    worker.step([Taken(_order(2), transport.acked)])  # 1 is confirmed now, its mark not due yet; 2 is in flight
    worker.step([Taken(_order(1), transport.acked)])  # 1 again
    worker.settle()
    orders = [o for o in transport.published if o.message_type == "CustomerOrder"]
    assert len(orders) == 2, "orders 1 and 2 once each"
    with worker.sessions() as session:
        assert list(session.scalars(select(OutboxRow.status))) == ["sent", "sent"]


def test_a_trickle_costs_one_commit_per_message(settings: Settings) -> None:
    """At a low rate every message is a batch of its own: its commit is the only one. The confirmed rows' marks
    wait for the recorder (once a second) or settle() instead of a commit (an fsync) of their own per message."""
    transport = FakeTransport()
    worker = Worker(settings, transport, open_store(settings))
    commits: list[object] = []
    event.listen(worker.sessions.kw["bind"], "commit", commits.append)
    for n in range(5):
        worker.step([Taken(_order(n), transport.acked)])
    assert len(commits) == 5
    worker.settle()
    assert len(commits) == 6, "the marks of all five in one commit"
    with worker.sessions() as session:
        assert set(session.scalars(select(OutboxRow.status))) == {"sent"}
        assert set(session.scalars(select(MessageRow.status))) == {"delivered"}


def test_the_loop_shows_its_progress_and_the_store_its_availability(settings: Settings, tmp_path: Path) -> None:
    """What the stall alerts read: the loop's last round (HmcWorkerStalled), whether the store answers
    (HmcStoreUnavailable) and whether the worker's AMQP connection is open (HmcAmqpUnavailable)."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker

    from broker.observability import metrics

    rounds = iter(range(3))
    worker = Worker(settings, FakeTransport(), open_store(settings))
    before = datetime.now(UTC).timestamp()
    worker.run(until=lambda: next(rounds, None) is None)
    assert metrics.WORKER_PROGRESS._value.get() >= before
    worker._gauges()
    assert metrics.STORE_AVAILABLE._value.get() == 1 and metrics.AMQP_AVAILABLE._value.get() == 1
    gone = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'store.sqlite'}")
    Worker(settings, FakeTransport(), sessionmaker(gone))._gauges()
    assert metrics.STORE_AVAILABLE._value.get() == 0

    class Disconnected(FakeTransport):
        def connected(self) -> bool:
            return False

    Worker(settings, Disconnected(), open_store(settings))._gauges()
    assert metrics.AMQP_AVAILABLE._value.get() == 0, "HmcAmqpUnavailable reads this"


def test_the_loop_shows_how_long_what_it_took_had_waited_and_zero_when_idle(settings: Settings) -> None:
    """What HmcInboundWaiting reads: the wait of the oldest message of the latest batch, per side, from the AMQP
    timestamp its publisher set; a replay's stamp is the operator's, not a wait, and idle means zero."""
    from broker.observability import metrics

    class Backlog(FakeTransport):
        def __init__(self, batches: list[list[Taken]]) -> None:
            super().__init__()
            self.batches = batches

        def receive(self, max_count: int, wait_s: float, idle_s: float) -> list[Taken]:
            return self.batches.pop(0) if self.batches else []

    now = datetime.now(UTC).timestamp()
    waited = [dataclasses.replace(_order(n), published_at=now - age) for n, age in ((1, 400), (2, 30))]
    transport = Backlog([[Taken(d, []) for d in waited]])
    seen: list[float] = []
    worker = Worker(settings, transport, open_store(settings))

    def look() -> bool:
        seen.append(metrics.INBOUND_WAIT.labels("customer")._value.get())
        return len(seen) > 2

    worker.run(until=look)
    assert seen[1] == pytest.approx(400, abs=5), "the oldest of the batch"
    assert metrics.INBOUND_WAIT.labels("sesam2")._value.get() == 0
    assert seen[2] == 0, "idle: nothing waits for the worker"


def test_a_worker_blocked_by_rabbitmq_takes_no_new_work_until_unblocked(settings: Settings) -> None:
    """connection.blocked (a memory or disk alarm): the loop goes round without receiving, hmc_amqp_blocked
    says why; once unblocked the waiting message is processed and published."""
    from broker.observability import metrics

    class Alarmed(FakeTransport):
        def __init__(self) -> None:
            super().__init__(is_blocked=True)
            self.received = 0
            self.waiting = [Taken(_order(0))]

        def receive(self, max_count: int, wait_s: float, idle_s: float) -> list[Taken]:
            self.received += 1
            batch, self.waiting = self.waiting, []
            return batch

    transport = Alarmed()
    worker = Worker(settings, transport, open_store(settings))
    rounds = iter(range(3))
    worker.run(until=lambda: next(rounds, None) is None)
    assert transport.received == 0 and not transport.published
    assert metrics.AMQP_BLOCKED._value.get() == 1
    transport.is_blocked = False
    rounds = iter(range(3))
    worker.run(until=lambda: next(rounds, None) is None)
    assert transport.received > 0 and transport.published, "processed once unblocked"
    assert metrics.AMQP_BLOCKED._value.get() == 0


def test_a_publish_lost_with_the_connection_goes_out_again_ahead_of_the_next_batch(settings: Settings) -> None:
    """A batch's publish fails on the way (the connection to RabbitMQ went): its rows are sent again at once,
    first in the next batch's send, so that later messages of the same orders cannot overtake them while the
    relay's backoff runs (found by killing the RabbitMQ node the workers were connected to)."""

    class LosesOnce(FakeTransport):
        def __init__(self) -> None:
            super().__init__()
            self.sends: list[list[str]] = []

        def send(self, batch: Sequence[Outgoing]) -> Sent:
            self.sends.append([o.message_id for o in batch if o.message_type == "CustomerOrder"])
            if len(self.sends) == 1:
                return Sent([Result(False, "connection: Connection reset by peer") for _ in batch])
            return super().send(batch)

    transport = LosesOnce()
    worker = Worker(settings, transport, open_store(settings))
    worker.step([Taken(_order(1), transport.acked)])
    worker.step([Taken(_order(2), transport.acked)])
    worker.settle()
    first, second = transport.sends
    assert len(first) == 1 and second[0] == first[0] and len(second) == 2, "order 1 again, ahead of order 2"
    with worker.sessions() as session:
        assert list(session.scalars(select(OutboxRow.status))) == ["sent", "sent"]


def test_rows_lost_on_the_way_again_and_again_stay_ahead_of_everything_sent_after_them(settings: Settings) -> None:
    """Lost once with its batch and once more when sent alone (RabbitMQ closing blocked connections under a
    memory alarm): the row stays first in line, and order 2, taken meanwhile, goes out only behind it. Left to
    the relay's backoff after its second loss, order 2 overtook it (CI: orders out of order under an alarm)."""

    class Flaky(FakeTransport):
        def __init__(self) -> None:
            super().__init__()
            self.sends: list[list[str]] = []

        def send(self, batch: Sequence[Outgoing]) -> Sent:
            self.sends.append([o.message_id for o in batch if o.message_type == "CustomerOrder"])
            if len(self.sends) <= 2:
                return Sent([Result(False, "connection: Server unexpectedly closed connection") for _ in batch])
            return super().send(batch)

    transport = Flaky()
    worker = Worker(settings, transport, open_store(settings))
    worker.step([Taken(_order(1), transport.acked)])
    worker._settle_in_flight()
    worker._send_again()  # alone (idle): lost again
    worker._send_again()  # at once again: it waits a second instead
    assert len(transport.sends) == 2
    worker.step([Taken(_order(2), transport.acked)])
    worker.settle()
    first, alone, together = transport.sends
    assert alone == first and together[0] == first[0] and len(together) == 2, "order 1 again, ahead of order 2"
    with worker.sessions() as session:
        assert list(session.scalars(select(OutboxRow.status).order_by(OutboxRow.id))) == ["sent", "sent"]
        assert session.scalar(select(OutboxRow.attempts).order_by(OutboxRow.id)) == 0, "a loss on the way is none"


def test_an_unroutable_publish_is_left_to_the_relay(settings: Settings) -> None:
    """Sending again at once is for publishes lost on the way; an unroutable one (a missing queue) would only
    use up its attempts: the relay's backoff takes it."""
    transport = FakeTransport(publish_ok=False)
    worker = Worker(settings, transport, open_store(settings))
    worker.step([Taken(_order(1), transport.acked)])
    transport.publish_ok = True
    worker.step([Taken(_order(2), transport.acked)])
    worker.settle()
    orders = [o for o in transport.published if o.message_type == "CustomerOrder"]
    assert len(orders) == 1, "only order 2; order 1 waits for the relay"
    with worker.sessions() as session:
        assert sorted(session.scalars(select(OutboxRow.status))) == ["pending", "sent"]


def test_a_running_worker_leaves_confirmed_rows_to_its_recorder_and_its_commits_carry_no_marks(
    settings: Settings,
) -> None:
    """Marking a second's confirmed rows rewrote hundreds of message rows in the worker's own thread, and the
    messages arriving meanwhile waited (the bench's p99): the recorder's thread does it, the worker goes on."""
    import threading

    class Trickle(FakeTransport):
        def __init__(self, batches: list[list[Taken]]) -> None:
            super().__init__()
            self.batches = batches

        def receive(self, max_count: int, wait_s: float, idle_s: float) -> list[Taken]:
            return self.batches.pop(0) if self.batches else []

    transport = Trickle([[Taken(_order(n), [])] for n in range(3)])
    worker = Worker(settings, transport, open_store(settings))
    marks: list[str] = []

    def note(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE OUTBOX"):
            marks.append(threading.current_thread().name)

    event.listen(worker.sessions.kw["bind"], "before_cursor_execute", note)
    deadline = datetime.now(UTC) + timedelta(seconds=10)

    def all_marked() -> bool:
        with worker.sessions() as session:
            statuses = list(session.scalars(select(OutboxRow.status)))
        return (len(statuses) == 3 and set(statuses) == {"sent"}) or datetime.now(UTC) > deadline

    worker.run(until=all_marked)
    assert marks and set(marks) == {"recorder"}, f"marked by {marks}"
    with worker.sessions() as session:
        assert set(session.scalars(select(MessageRow.status))) == {"delivered"}
    assert worker.recorder.unrecorded() == set()


def test_a_worker_busy_for_seconds_settles_its_batch_in_flight_before_the_relay_publishes(settings: Settings) -> None:
    """The relay and the recorder's hand-over come round once a second also when batches never stop coming: the
    batch in flight is settled first (one batch in flight at a time; a worker once died of it in a fault test)."""
    import time

    class Busy(FakeTransport):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def receive(self, max_count: int, wait_s: float, idle_s: float) -> list[Taken]:
            self.n += 1
            time.sleep(0.02)
            return [Taken(_order(self.n), self.acked)]

    transport = Busy()
    worker = Worker(settings, transport, open_store(settings))
    transport.publish_ok = False  # an order whose publish failed: due again for the relay while batches come
    worker.process([Taken(_order(0), [])])
    with worker.sessions() as session:
        session.execute(update(OutboxRow).values(next_attempt_at=datetime.now(UTC) + timedelta(seconds=1.2)))
        session.commit()
    transport.publish_ok = True
    started = time.monotonic()
    worker.run(until=lambda: time.monotonic() - started > 2.5)
    assert len(transport.acked) == transport.n, "every batch taken was committed, sent and acknowledged"
    with worker.sessions() as session:
        assert set(session.scalars(select(OutboxRow.status))) == {"sent"}, "the relay sent the failed one too"
