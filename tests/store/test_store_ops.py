"""Search, show, export, resolve, audit and retention on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

from broker.contract.dialect import read
from broker.model.codes import Side
from broker.store.tables import AppendOnlyError, AuditRow, EventRow, MessageRow, OutboxRow
from replay import search as finder
from replay.audit import Actor, AuditRequired
from replay.export import export
from replay.filters import Filter, FilterError, parse_period, parse_when
from replay.prune import Retention, prune
from replay.resolve import resolve
from replay.show import details
from tests.support.replaying import FIXTURES, ORDER, Broker

ACTOR = Actor("anna.k", "INC-4711")
ORDER_ID = "58156064-d632-45b6-90ad-f49cc0ab6b60"
PATIENT = "194503079818"  # synthetic, in the fixture


def _order(n: int, customer: str = "1002", quantity: int = 1) -> bytes:
    body = ORDER.read_bytes().replace(ORDER_ID.encode(), f"58156064-d632-45b6-90ad-{n:012d}".encode())
    body = body.replace(b"WS-1002-2026-004817", f"WS-1002-2026-{n:06d}".encode())  # an order of its own each
    body = body.replace(b"<CustomerNumber>1002<", f"<CustomerNumber>{customer}<".encode())
    return body.replace(b"<Quantity>1</Quantity>", f"<Quantity>{quantity}</Quantity>".encode(), 1)


def _seed(broker: Broker) -> dict[str, int]:
    """Four orders of customer 1002, one of 2040 (no AMQP user), one rejected, one answer from SESAM2."""
    ids = {f"order{n}": broker.receive(_order(n)).id for n in range(4)}
    ids["other"] = broker.receive(_order(10, customer="2040"), routing_key="2040.CustomerOrder").id
    ids["rejected"] = broker.receive(_order(11, quantity=0)).id
    answer = (FIXTURES / "sesam2/valid/OrderConfirmation-two-lines.xml").read_bytes()
    ids["answer"] = broker.receive(answer, Side.SESAM2, "OrderConfirmation").id
    return ids


def _ids(page: finder.Page) -> list[int]:
    return [r.id for r in page.rows]


def test_search_filters_and_keyset_pages(broker: Broker) -> None:
    ids = _seed(broker)
    with broker.sessions() as s:
        everything = _ids(finder.search(s, Filter()))
        assert everything == sorted(ids.values(), reverse=True), "newest first"
        assert _ids(finder.search(s, Filter(statuses=("rejected",)))) == [ids["rejected"]]
        assert _ids(finder.search(s, Filter(customers=("2040",)))) == [ids["other"]]
        assert _ids(finder.search(s, Filter(direction="outbound"))) == [ids["answer"]]
        assert _ids(finder.search(s, Filter(types=("OrderConfirmation",)))) == [ids["answer"]]
        assert _ids(finder.search(s, Filter(error="SCHEMA.RANGE"))) == [ids["rejected"]], "case-insensitive"
        assert _ids(finder.search(s, Filter(error="100%_"))) == [], "wildcards are text"
        assert _ids(finder.search(s, Filter(message_id=f"58156064-d632-45b6-90ad-{2:012d}"))) == [ids["order2"]]
        sent = s.scalar(select(OutboxRow.message_id).where(OutboxRow.message_pk == ids["order1"]))
        assert _ids(finder.search(s, Filter(message_id=sent))) == [ids["order1"]], "found by what it sent"
        order_ref = s.get(MessageRow, ids["order0"]).order_ref  # type: ignore[union-attr]
        assert order_ref and ids["order0"] in _ids(finder.search(s, Filter(order=order_ref)))
        assert ids["answer"] in _ids(finder.search(s, Filter(correlation_id="WS-1001-2026-011374")))
        future = datetime.now(UTC) + timedelta(hours=1)
        assert _ids(finder.search(s, Filter(since=future))) == []
        assert _ids(finder.search(s, Filter(until=future, since=parse_when("1h")))) == everything
        # Pages of two: together exactly the whole list, in order, none twice.
        paged, after = [], None
        while True:
            page = finder.search(s, Filter(), limit=2, after=after)
            paged += _ids(page)
            if page.next is None:
                break
            after = page.next
        assert paged == everything
        with pytest.raises(FilterError, match="cursor"):
            finder.search(s, Filter(), after="not-a-cursor")


def test_patient_search_needs_a_reason_is_audited_and_never_stores_the_identifier(broker: Broker) -> None:
    ids = _seed(broker)
    with broker.sessions() as s:
        with pytest.raises(AuditRequired):
            finder.search(s, Filter(patient=PATIENT))
        found = _ids(finder.search(s, Filter(patient="450307-9818"), actor=ACTOR))  # the 10-digit form
        # A rejected message has no model to read the patient from (see README: not indexed by patient).
        assert set(found) == {ids[f"order{n}"] for n in range(4)} | {ids["other"]}
        with pytest.raises(FilterError) as refused:
            finder.search(s, Filter(patient="194503079819"), actor=ACTOR)  # wrong check digit
        assert "9819" not in str(refused.value)
        (entry,) = s.scalars(select(AuditRow)).all()
        assert (entry.actor, entry.action, entry.reason, entry.os_user) == (
            "anna.k",
            "search",
            "INC-4711",
            ACTOR.os_user,
        )
        assert entry.details["filter"]["patient"].startswith("[patient-ref:")
        assert entry.details["found"] == found
        stored = json.dumps(entry.details) + " ".join(str(r.patient_ref) for r in s.scalars(select(MessageRow)))
        assert "5030798" not in stored, "the identifier appears nowhere in clear"


def test_show_masks_patients_unless_revealed_for_a_reason(broker: Broker) -> None:
    broker.transport.publish_ok = False
    pk = broker.receive(_order(1)).id
    broker.park_after_failed_publishes()
    with broker.sessions() as s:
        doc = details(s, str(pk))
        assert doc["message"]["status"] == "parked"
        assert PATIENT not in json.dumps(doc) and "[patient-id:" in doc["payload"]
        assert doc["message"]["patient"].startswith("[patient-ref:")
        (published,) = doc["published"]
        assert (published["status"], published["attempts"], published["error"]) == ("parked", 2, "unroutable: NO_ROUTE")
        assert published["routing_key"] == "CustomerOrder" and PATIENT not in (published["body"] or "")
        assert [e["stage"] for e in doc["events"]][:2] == ["validate", "translate"]
        assert s.scalars(select(AuditRow)).all() == []
        doc = details(s, f"58156064-d632-45b6-90ad-{1:012d}", reveal_for=ACTOR)  # by message id
        assert doc["message"]["patient"] == PATIENT and PATIENT in doc["payload"]
        (entry,) = s.scalars(select(AuditRow)).all()
        assert (entry.action, entry.details["messages"]) == ("reveal", [pk])
        with pytest.raises(FilterError, match="no message"):
            details(s, "999999")


def test_every_action_leaves_its_audit_row_and_the_audit_is_append_only(broker: Broker) -> None:
    ids = _seed(broker)
    with broker.sessions() as s:
        finder.search(s, Filter(patient=PATIENT), actor=ACTOR)
        details(s, str(ids["order0"]), reveal_for=ACTOR)
        export(s, [ids["order0"], ids["order1"]], io.StringIO(), ACTOR, revealed=False, selection={"ids": ["x"]})
        resolve(s, [ids["rejected"]], ACTOR, {"ids": [str(ids["rejected"])]})
    replayer = broker.replayer
    with broker.sessions() as s:
        sources, _ = replayer.sources(s, [ids["order2"]], strict=True)
    replayer.dry_run(sources, ACTOR, force=False, selection={})
    replayer.run(replayer.start(sources, ACTOR, force=False, selection={}))
    _backdate(broker, ids["order3"], days=200)
    prune(broker.sessions, Retention(), older_than=None, actor=ACTOR)
    with broker.sessions() as s:
        rows = s.scalars(select(AuditRow).order_by(AuditRow.id)).all()
        assert [r.action for r in rows] == [
            "search",
            "reveal",
            "export",
            "resolve",
            "replay-dry-run",
            "replay",
            "prune",
        ]
        assert all(r.actor == "anna.k" and r.reason == "INC-4711" and r.os_user for r in rows)
        assert rows[3].details["messages"] == [ids["rejected"]]
        # Nobody changes the trail: not the ORM, not a bulk statement, not plain SQL.
        rows[0].reason = "nothing happened"
        with pytest.raises(AppendOnlyError):
            s.flush()
        s.rollback()
        with pytest.raises(AppendOnlyError):
            s.execute(update(AuditRow).values(reason="x"))
        s.rollback()
        with pytest.raises(AppendOnlyError):
            s.delete(s.get(AuditRow, rows[0].id))
            s.flush()
        s.rollback()
        for statement in ("UPDATE audit SET reason = 'x'", "DELETE FROM audit"):
            with pytest.raises(DBAPIError, match="append-only"):
                s.execute(text(statement))
            s.rollback()
        assert len(s.scalars(select(AuditRow)).all()) == 7


def _backdate(broker: Broker, pk: int, days: int) -> None:
    with broker.sessions() as s:
        stamp = datetime.now(UTC) - timedelta(days=days)
        s.execute(update(MessageRow).where(MessageRow.id == pk).values(received_at=stamp))
        s.commit()


def test_prune_removes_only_settled_payloads_past_their_retention(broker: Broker) -> None:
    delivered = broker.receive(_order(1)).id
    rejected = broker.receive(_order(2, quantity=0)).id
    broker.transport.publish_ok = False
    parked = broker.receive(_order(3)).id
    broker.park_after_failed_publishes()
    in_flight = broker.receive(_order(4)).id  # one failed publish: forwarded, pending in the outbox
    broker.transport.publish_ok = True
    recent = broker.receive(_order(5)).id
    invoice = broker.receive(
        (FIXTURES / "sesam2/valid/InvoiceData-2026-10.xml").read_bytes(), Side.SESAM2, "InvoiceData"
    ).id
    statuses = {pk: broker.row(pk).status for pk in (delivered, rejected, parked, in_flight, recent, invoice)}
    assert list(statuses.values()) == ["delivered", "rejected", "parked", "forwarded", "delivered", "delivered"]
    for pk in (delivered, rejected, parked, in_flight, invoice):
        _backdate(broker, pk, days=200)
    retention = Retention.parse("default=90d,InvoiceData=3650d")

    planned = prune(broker.sessions, retention, older_than=None, actor=ACTOR, dry_run=True)
    assert {r.message_type: r.messages for r in planned} == {"InvoiceData": 0, "(other types)": 1}
    assert broker.row(delivered).payload is not None, "a dry run removes nothing"
    assert prune(broker.sessions, retention, older_than=timedelta(days=365), actor=ACTOR)[-1].messages == 0

    removed = prune(broker.sessions, retention, older_than=timedelta(days=30), actor=ACTOR)
    assert sum(r.messages for r in removed) == 1
    gone = broker.row(delivered)
    assert (gone.payload, gone.patient_ref, gone.status) == (None, None, "delivered")
    with broker.sessions() as s:
        bodies = s.scalars(select(OutboxRow.body).where(OutboxRow.message_pk == delivered)).all()
        assert bodies == [b""], "the translated copy holds the patient too"
        assert s.scalar(select(EventRow.detail).where(EventRow.message_pk == delivered, EventRow.stage == "prune"))
    for kept in (rejected, parked, in_flight, recent, invoice):
        assert broker.row(kept).payload is not None, broker.row(kept).status

    with broker.sessions() as s:
        resolve(s, [rejected], ACTOR, {})
    prune(broker.sessions, retention, older_than=None, actor=ACTOR)
    assert broker.row(rejected).payload is None, "resolved: now retention applies"
    assert broker.row(parked).payload is not None, "still unresolved"
    with broker.sessions() as s:
        actions = s.scalars(select(AuditRow.action)).all()
    assert actions.count("prune") == 2, "a dry run and an empty prune leave no trace"


def test_retention_and_time_options_read_as_operators_write_them() -> None:
    assert parse_period("90d") == timedelta(days=90)
    assert parse_period("1d12h") == timedelta(hours=36)
    assert parse_period("10y") == timedelta(days=3650)
    for bad in ("90", "d", "90 days", "-1d"):
        with pytest.raises(FilterError):
            parse_period(bad)
    at = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    assert parse_when("3h", now=at) == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert parse_when("2026-11-24T04:00+01:00") == at
    retention = Retention.parse("default=30d, InvoiceData=3650d")
    assert (retention.default, retention.per_type["InvoiceData"]) == (timedelta(days=30), timedelta(days=3650))
    assert Retention.parse("") == Retention()
    with pytest.raises(FilterError, match="TYPE=PERIOD"):
        Retention.parse("InvoiceData")
    with pytest.raises(FilterError, match="unknown status"):
        Filter(statuses=("lost",))


def test_the_store_key_makes_patient_refs_comparable_across_processes(broker: Broker) -> None:
    """patient_ref uses the store's own key, so another process (the CLI) finds what a worker stored."""
    import subprocess
    import sys

    pk = broker.receive(_order(1)).id
    code = (
        "import sys; from broker.bootstrap import store; from broker.config import Settings;"
        "from replay.search import search; from replay.filters import Filter; from replay.audit import Actor;"
        f"s = store(Settings(db_url={broker.settings.db_url!r}))();"
        f"print([r.id for r in search(s, Filter(patient={PATIENT!r}), actor=Actor('a', 'b')).rows])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert out.stdout.strip() == f"[{pk}]"
    assert read(broker.row(pk).payload or b"").ok
