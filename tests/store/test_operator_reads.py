"""Repositories that only the edges use, on SQLite and PostgreSQL alike: the search bench's bulk load (COPY on
PostgreSQL), and the questions the harness and the demo ask of the store. The operators' own (search, show,
replay, prune, audit) are held by test_store_ops.py and test_replay.py through replay/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from broker.store import messages, queries
from broker.store.bulk_load import load_messages
from tests.support.fixtures import Store

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _row(n: int, status: str, error: str | None = None) -> dict[str, Any]:
    at = T0 + timedelta(minutes=n)
    return {
        "message_id": f"bulk-{n}",
        "direction": "inbound",
        "message_type": "CustomerOrder" if n % 2 else None,
        "customer_number": "1001",
        "correlation_id": f"ORD-{n}",
        "order_ref": f"ORD-{n}",
        "patient_ref": None,
        "status": status,
        "attempts": 1,
        "last_error": error,
        "received_at": at,
        "updated_at": at,
        "payload": b"<CustomerOrder/>",
        "properties": {"bench": 1},
    }


def test_a_bulk_load_lands_every_row_as_written_and_the_harness_sees_its_failures(store: Store) -> None:
    rows = [
        _row(0, "delivered"),
        _row(1, "rejected", "schema.range at /CustomerOrder"),
        _row(2, "parked"),
        _row(3, "delivered"),
    ]
    load_messages(store.sessions, iter(rows), lambda _n: None)
    with store.sessions() as session:
        loaded = messages.newest(session, messages.Criteria(), limit=10)
        assert [r.message_id for r in loaded] == ["bulk-3", "bulk-2", "bulk-1", "bulk-0"]
        assert loaded[0].properties == {"bench": 1} and loaded[0].payload == b"<CustomerOrder/>"
        assert sorted(queries.failed(session)) == [
            ("bulk-1", "rejected", "schema.range at /CustomerOrder"),
            ("bulk-2", "parked", None),
        ]
        counts = {(c.message_type, c.status): c.count for c in queries.counts_since(session, T0 + timedelta(minutes=1))}
        assert counts == {("CustomerOrder", "rejected"): 1, ("unknown", "parked"): 1, ("CustomerOrder", "delivered"): 1}
