"""Exporting messages from the store (JSON lines), for a developer's bench or a case file.

An export copies messages out of the store's protection, so it is always audited (what, for whom,
why) and patient identifiers stay masked unless revealed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import IO, Any

from broker.store import Session, messages
from replay import audit, reveal
from replay.search import summary

CHUNK = 500


def export(
    session: Session,
    ids: Sequence[int],
    out: IO[str],
    actor: audit.Actor,
    *,
    revealed: bool,
    selection: dict[str, Any],
) -> int:
    """Write one JSON object a line per message (its summary and payload); the audit row comes first."""
    audit.record(
        session,
        actor,
        "export",
        {**selection, "revealed": revealed, "count": len(ids), "messages": list(ids[:1000])},
    )
    session.commit()
    written = 0
    for row in messages.in_chunks(session, ids, CHUNK):
        patient = reveal.patient_in(row.payload) if revealed else None
        record = {**summary(row, patient), "properties": reveal.properties_view(row.properties, revealed)}
        record["payload"] = reveal.text_of(row.payload, revealed, reveal.opening_of(session, row))
        out.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        written += 1
    return written
