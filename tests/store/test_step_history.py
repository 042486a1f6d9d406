"""A message's processing steps: those of the transaction that stored it travel in its row (messages.steps),
those taken on it later are rows of `events`; the store's reader gives both, in the order they happened."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, insert, select

from broker.store import messages
from broker.store.tables import EVENTS, MESSAGES, EventRow, MessageRow
from broker.store.unit_of_work import UnitOfWork
from tests.support.fixtures import Store, new_message


def test_a_new_messages_steps_are_written_in_its_row_and_later_ones_as_events(store: Store) -> None:
    with UnitOfWork(store.sessions) as uow:
        row = new_message(uow, "m-1")
        uow.event(row, "validate", "ok", None, 0.25)
        uow.event(row, "translate", "ok", "to SESAM2 as ORDERS")
        uow.commit()
    with UnitOfWork(store.sessions) as uow:  # the same message again: a step on a message stored before
        original = uow.originals("inbound", ["m-1"])["m-1"]
        uow.event(original, "dedupe", "duplicate", "the same message id arrived again")
        uow.commit()
    with store.sessions() as session:
        assert session.scalar(select(func.count()).select_from(EventRow)) == 1  # only the later step
        (own,) = session.scalars(select(MessageRow.steps).where(MessageRow.id == row.id))
        assert [s["stage"] for s in own] == ["validate", "translate"]
        steps = messages.steps(session, [row.id])
    assert [(s.stage, s.outcome, s.detail) for s in steps] == [
        ("validate", "ok", None),
        ("translate", "ok", "to SESAM2 as ORDERS"),
        ("dedupe", "duplicate", "the same message id arrived again"),
    ]
    assert steps[0].duration_ms == 0.25 and steps[0].message_pk == row.id
    assert all(s.at.tzinfo is not None for s in steps)
    assert steps[0].at <= steps[1].at <= steps[2].at


def test_a_row_stored_before_the_step_column_keeps_its_steps_in_events(store: Store) -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    with store.sessions() as session:  # as migration 0008's broker wrote it: no steps in the row
        (pk,) = session.execute(
            insert(MESSAGES).returning(MESSAGES.c.id),
            [
                {
                    "message_id": "old-1",
                    "direction": "inbound",
                    "status": "forwarded",
                    "received_at": at,
                    "updated_at": at,
                    "properties": {},
                }
            ],
        ).scalars()
        session.execute(
            insert(EVENTS),
            [
                {"message_pk": pk, "stage": "validate", "outcome": "ok", "detail": None, "at": at, "duration_ms": 1.0},
                {"message_pk": pk, "stage": "translate", "outcome": "ok", "detail": "x", "at": at, "duration_ms": None},
            ],
        )
        session.commit()
        assert [(s.stage, s.outcome) for s in messages.steps(session, [pk])] == [
            ("validate", "ok"),
            ("translate", "ok"),
        ]
