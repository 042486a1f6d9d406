"""Everything the store knows about one message: why it failed, what was tried, what went out.

The message's AMQP properties, every processing event of it and of its replays, each attempt's error
(its own and its replays' rows, each outbox row's publish attempts), its payload, and each translated
message with where it was published and whether it was confirmed.
"""

from __future__ import annotations

from typing import Any

from broker.store import Session, messages
from replay import audit, reveal
from replay.filters import FilterError
from replay.search import find, summary, utc


def details(session: Session, key: str, *, reveal_for: audit.Actor | None = None) -> dict[str, Any]:
    """The message named by `key` (row id or message id) as a JSON-able document.

    With `reveal_for`, patient identifiers are shown in clear and the reveal is audited first.
    """
    found = find(session, key)
    if not found:
        raise FilterError(f"no message {key} in the store")
    row = found[0]
    original = row.replay_of or row.id
    family = messages.family(session, original)
    revealed = reveal_for is not None
    if reveal_for is not None:
        reveal.record(session, reveal_for, [row], "show")
    pks = [r.id for r in family]
    events = messages.steps(session, pks)
    outbox = messages.published(session, pks)
    patient = reveal.patient_in(row.payload) if revealed else None
    opening = reveal.opening_of(session, row)  # an answer about a protected patient's order
    return {
        "message": summary(row, patient),
        "properties": reveal.properties_view(row.properties, revealed),
        "attempts": [
            {
                "id": r.id,
                "received_at": utc(r.received_at).isoformat(),
                "status": r.status,
                "replay_of": r.replay_of,
                "by": (r.properties.get("replay") or {}).get("operator"),
                "error": r.last_error,
                "diff": (reveal.properties_view(r.properties, revealed).get("replay") or {}).get("diff"),  # an edit
            }
            for r in family
        ],
        "events": [
            {
                "message": e.message_pk,
                "at": utc(e.at).isoformat(),
                "stage": e.stage,
                "outcome": e.outcome,
                "detail": e.detail,
                "duration_ms": round(e.duration_ms, 3) if e.duration_ms is not None else None,
            }
            for e in events
        ],
        "published": [
            {
                "message": o.message_pk,
                "message_id": o.message_id,
                "type": o.message_type,
                "exchange": o.exchange or "(default: reply_to)",
                "routing_key": o.routing_key,
                "status": o.status,
                "attempts": o.attempts,
                "error": o.last_error,
                "created_at": utc(o.created_at).isoformat(),
                "sent_at": utc(o.sent_at).isoformat() if o.sent_at else None,
                "body": reveal.text_of(o.body or None, revealed, opening),
            }
            for o in outbox
        ],
        "payload": reveal.text_of(row.payload, revealed, opening),
        "revealed": revealed,
    }
