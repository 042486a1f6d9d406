"""Replays through the worker's own pipeline and publisher, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from broker.config import Customer
from broker.contract.dialect import read
from broker.envelope import Delivery
from broker.model.codes import Side
from broker.store.tables import AuditRow, MessageRow, ReplayItemRow, ReplayJobRow
from broker.translation import derived_id
from replay import edit as editing
from replay.audit import Actor
from replay.replay import ReplayError, _Taken
from tests.support.fakes import Taken
from tests.support.fixtures import stored_steps
from tests.support.replaying import ORDER, Broker

ACTOR = Actor("anna.k", "INC-4711: SESAM2 queue was missing")


def replay(broker: Broker, *pks: int, force: bool = False, body: bytes | None = None, diff: str | None = None):  # type: ignore[no-untyped-def]
    replayer = broker.replayer
    with broker.sessions() as session:
        sources, _ = replayer.sources(session, pks, strict=True)
    action = "edit" if body is not None else "replay"
    job = replayer.start(sources, ACTOR, force=force, selection={"ids": [str(p) for p in pks]}, action=action)
    return replayer.run(job, body=body, diff=diff)


def test_a_parked_message_replayed_after_its_fault_is_gone_is_delivered_exactly_once(broker: Broker) -> None:
    broker.transport.publish_ok = False  # the fault: SESAM2's queue is gone, every publish comes back
    original = broker.receive(ORDER.read_bytes())
    broker.park_after_failed_publishes()
    assert broker.row(original.id).status == "parked"
    broker.transport.publish_ok = True  # the fault is gone

    (outcome,) = replay(broker, original.id)

    assert outcome.status == "delivered" and outcome.held_back == []
    (sent,) = broker.transport.published
    order = read(ORDER.read_bytes()).message
    assert order is not None
    assert sent.message_id == derived_id(order.header.message_id, "translated"), "the id the original would have had"
    assert broker.row(original.id).status == "replayed", "the original is resolved by its replay"
    new = broker.row(outcome.replay or 0)
    assert (new.replay_of, new.payload) == (original.id, original.payload)
    # Again, without --force: it went out, so nothing goes out a second time.
    (again,) = replay(broker, original.id)
    assert again.status == "skipped" and len(again.held_back) == 1
    assert len(broker.transport.published) == 1


def test_replaying_a_delivered_message_without_force_changes_nothing_downstream(broker: Broker) -> None:
    original = broker.receive(ORDER.read_bytes())
    assert broker.row(original.id).status == "delivered"
    (outcome,) = replay(broker, original.id)
    assert outcome.status == "skipped"
    assert len(broker.transport.published) == 1, "only the first delivery"
    assert broker.row(original.id).status == "delivered"
    with broker.sessions() as session:
        outcomes = {(e.stage, e.outcome) for e in stored_steps(session, [outcome.replay])}
    assert {("validate", "ok"), ("replay", "held-back")} <= outcomes, "it went through the whole pipeline"

    (forced,) = replay(broker, original.id, force=True)
    assert forced.status == "delivered"
    first, second = broker.transport.published
    assert first.message_id == second.message_id, "a forced resend keeps the id: consumers that kept it drop it"


def test_an_edited_replay_keeps_the_original_and_sends_exactly_one_copy(broker: Broker) -> None:
    good = ORDER.read_bytes()
    bad = good.replace(b"<Quantity>1</Quantity>", b"<Quantity>0</Quantity>", 1)
    original = broker.receive(bad)
    assert broker.row(original.id).status == "rejected"
    rejections = [o for o in broker.transport.published if o.message_type == "Rejection"]
    assert len(rejections) == 1

    editing.check(bad, good)
    diff = editing.unified_diff(bad, good, "message.xml")
    (outcome,) = replay(broker, original.id, body=good, diff=diff)

    assert outcome.status == "delivered"
    orders = [o for o in broker.transport.published if o.message_type == "CustomerOrder"]
    assert len(orders) == 1
    stored = broker.row(original.id)
    assert stored.payload == bad and stored.status == "replayed", "the original stays as it came"
    edited = broker.row(outcome.replay or 0)
    assert edited.payload == good and edited.properties["replay"]["diff"] == diff
    order = read(good).message
    assert order is not None
    assert orders[0].message_id != derived_id(order.header.message_id, "translated"), "a new version, a new id"
    assert read(orders[0].body).message.header.message_id == orders[0].message_id  # type: ignore[union-attr]

    # Replaying the original again (unedited) or the edit again sends nothing more.
    replay(broker, original.id)
    replay(broker, edited.id)
    assert len([o for o in broker.transport.published if o.message_type == "CustomerOrder"]) == 1
    assert len([o for o in broker.transport.published if o.message_type == "Rejection"]) == 1


def test_edits_that_change_routing_fields_are_refused() -> None:
    good = ORDER.read_bytes()
    with pytest.raises(editing.EditRefused, match="CustomerNumber"):
        editing.check(good, good.replace(b"<CustomerNumber>1002<", b"<CustomerNumber>1001<"))
    with pytest.raises(editing.EditRefused, match="MessageId"):
        editing.check(good, good.replace(b"58156064-d632", b"58156064-d633"))
    with pytest.raises(editing.EditRefused, match="message type"):
        editing.check(good, good.replace(b"CustomerOrder", b"WorkOrder"))
    with pytest.raises(editing.EditRefused, match="well-formed"):
        editing.check(good, good[:200])
    with pytest.raises(editing.EditRefused, match="unchanged"):
        editing.check(good, good)


def test_a_replay_is_validated_again_and_cannot_launder_a_forged_sender(broker: Broker) -> None:
    broker.worker.process(
        [
            _taken(ORDER.read_bytes(), user_id="websesam-skane"),  # 1001's user sends for 1002
        ]
    )
    with broker.sessions() as session:
        original = session.scalars(select(MessageRow)).one()
    assert original.status == "rejected" and "security.forged-customer" in (original.last_error or "")
    (outcome,) = replay(broker, original.id)
    assert outcome.status == "rejected" and "security.forged-customer" in (outcome.error or "")
    assert broker.row(original.id).status == "rejected"
    assert [o.message_type for o in broker.transport.published] == ["Rejection"], "no second Rejection either"
    assert broker.transport.published[0].routing_key == "1001.Rejection", "to the sender, not to 1002"


def test_a_dry_run_changes_nothing_and_says_what_would_happen(broker: Broker) -> None:
    broker.transport.publish_ok = False
    original = broker.receive(ORDER.read_bytes())
    broker.park_after_failed_publishes()
    broker.transport.publish_ok = True
    replayer = broker.replayer
    with broker.sessions() as session:
        sources, _ = replayer.sources(session, [original.id], strict=True)
        before = session.scalars(select(MessageRow.id)).all()
    (outcome,) = replayer.dry_run(sources, ACTOR, force=False, selection={"ids": [str(original.id)]})
    assert outcome.status == "would-send" and outcome.sent[0].startswith("sesam2.out/CustomerOrder ")
    assert broker.transport.published == []
    with broker.sessions() as session:
        assert session.scalars(select(MessageRow.id)).all() == before
        assert session.scalars(select(AuditRow.action)).all() == ["replay-dry-run"]
    assert broker.row(original.id).status == "parked"


def test_a_bulk_replay_snapshots_its_ids_and_resumes_where_it_stopped(broker: Broker) -> None:
    broker.transport.publish_ok = False
    body = ORDER.read_bytes()
    ids = []
    for n in range(5):
        ids.append(
            broker.receive(
                body.replace(
                    b"58156064-d632-45b6-90ad-f49cc0ab6b60", f"58156064-d632-45b6-90ad-f49cc0ab6b6{n}".encode()
                ).replace(b"WS-1002-2026-004817", f"WS-1002-2026-00481{n}".encode())  # five orders, not one
            ).id
        )
    broker.park_after_failed_publishes()
    broker.transport.publish_ok = True
    replayer = broker.replayer
    with broker.sessions() as session:
        sources, _ = replayer.sources(session, ids, strict=False)
    job = replayer.start(sources, ACTOR, force=False, selection={"filter": {"statuses": ["parked"]}})
    seen: list[int] = []
    first = replayer.run(job, batch_size=2, stop=lambda: len(seen) >= 1, progress=seen.append)
    assert len(first) == 2
    with broker.sessions() as session:
        assert session.get(ReplayJobRow, job).status == "interrupted"  # type: ignore[union-attr]
    # A message parked after the snapshot is not part of the job.
    broker.transport.publish_ok = False
    late = broker.receive(
        body.replace(b"58156064-d632-45b6-90ad-f49cc0ab6b60", b"58156064-d632-45b6-90ad-f49cc0ab6b69").replace(
            b"WS-1002-2026-004817", b"WS-1002-2026-004819"
        )
    )
    broker.park_after_failed_publishes()
    broker.transport.publish_ok = True

    replayer.resume(job, Actor("bo.l", "continuing INC-4711"))
    rest = replayer.run(job, batch_size=2, rate=1000)
    assert len(rest) == 3
    assert len(broker.transport.published) == 5
    with broker.sessions() as session:
        job_row = session.get(ReplayJobRow, job)
        assert job_row is not None and (job_row.status, job_row.done) == ("done", 5)
        assert all(i.outcome == "delivered" for i in session.scalars(select(ReplayItemRow)))
        actions = session.scalars(select(AuditRow.action).order_by(AuditRow.id)).all()
    assert actions == ["replay", "replay-resume"]
    assert broker.row(late.id).status == "parked"
    with pytest.raises(ReplayError, match="done"):
        replayer.resume(job, ACTOR)


def test_a_replay_interrupted_after_its_commit_is_not_replayed_twice_on_resume(broker: Broker) -> None:
    broker.transport.publish_ok = False
    original = broker.receive(ORDER.read_bytes())
    broker.park_after_failed_publishes()
    broker.transport.publish_ok = True
    replayer = broker.replayer
    with broker.sessions() as session:
        sources, _ = replayer.sources(session, [original.id], strict=True)
    job = replayer.start(sources, ACTOR, force=True, selection={})
    # The command died right after the worker committed and published, before ticking the item off.
    replayer.worker.process([_replay_taken(replayer, sources[0], job)])  # type: ignore[union-attr]
    replayer.resume(job, ACTOR)
    (outcome,) = replayer.run(job)
    assert outcome.status == "delivered"
    assert len(broker.transport.published) == 1, "even forced, the job replays each message once"


def test_a_pruned_message_cannot_be_replayed(broker: Broker) -> None:
    original = broker.receive(ORDER.read_bytes())
    with broker.sessions() as session:
        session.get(MessageRow, original.id).payload = None  # type: ignore[union-attr]
        session.commit()
    with pytest.raises(ReplayError, match="pruned"), broker.sessions() as session:
        broker.replayer.sources(session, [original.id], strict=True)


def test_sesam2_answers_parked_for_an_unknown_customer_reach_it_once_configured(broker: Broker) -> None:
    path = next((ORDER.parents[2] / "sesam2/valid").glob("OrderConfirmation*.xml"))
    body = path.read_bytes()
    customer = read(body).message.header.customer_number  # type: ignore[union-attr]
    unknown = body.replace(f"<KUNDNR>{customer}</KUNDNR>".encode(), b"<KUNDNR>3999</KUNDNR>")
    assert unknown != body, "fixture must carry the customer number as KUNDNR"
    original = broker.receive(unknown, Side.SESAM2, "OrderConfirmation")
    assert broker.row(original.id).status == "parked"
    (still,) = replay(broker, original.id)
    assert still.status == "parked" and broker.row(original.id).status == "parked"
    # The fault is gone: the customer is configured now.
    customers = (*broker.settings.customers, Customer("3999"))
    broker.worker.pipeline.settings = dataclasses.replace(broker.settings, customers=customers)
    (outcome,) = replay(broker, original.id)
    assert outcome.status == "delivered"
    (sent,) = broker.transport.published
    assert sent.routing_key == "3999.OrderConfirmation"
    assert broker.row(original.id).status == "replayed" and broker.row(still.replay or 0).status == "replayed"


def _taken(body: bytes, **delivery: object) -> Taken:
    return Taken(Delivery(side=Side.CUSTOMER, body=body, routing_key="1002.CustomerOrder", **delivery))  # type: ignore[arg-type]


def _replay_taken(replayer, row, job):  # type: ignore[no-untyped-def]
    return _Taken(replayer._delivery(row, ACTOR, True, f"job-{job}", job))
