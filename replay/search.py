"""Searching the store: one page at a time, newest first, fast on millions of rows.

Pages are keyset-paged on (received_at, id), handed on as an opaque cursor; the statements, and the
indexes each filter maps onto, are in broker/store/messages.py. A search on a patient identifier writes
an audit row before it answers.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from re import Pattern
from typing import Any

from broker.contract import identifiers
from broker.model.types import IdKind
from broker.store import Session, messages
from broker.store.tables import MessageRow
from broker.store.unit_of_work import patient_ref, store_key
from replay import audit
from replay.filters import Filter, FilterError

MAX_PAGE = 1000


@dataclass(frozen=True)
class Page:
    rows: Sequence[MessageRow]
    next: str | None  # give it to --after for the next page; None on the last page


def utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes; the store writes UTC only."""
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def encode_cursor(row: MessageRow) -> str:
    raw = f"{utc(row.received_at).isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.rsplit("|", 1)
        return datetime.fromisoformat(stamp).astimezone(UTC), int(pk)
    except ValueError:
        raise FilterError(f"{cursor!r} is not a page cursor: pass on what the last page printed") from None


def patient_ref_of(session: Session, patient: str, reserve_patterns: Sequence[Pattern[str]]) -> str:
    """The stored token of a patient identifier the operator typed, in any of its written forms."""
    try:
        identifiers.check(IdKind.PATIENT, patient, reserve_patterns=reserve_patterns)
    except identifiers.IdentifierError as e:
        # The value itself is not repeated: it may be a real identifier with a typo.
        raise FilterError(f"--patient is not a valid patient identifier ({e.rule})") from None
    return patient_ref(store_key(session), patient, reserve_patterns)


def search(
    session: Session,
    f: Filter,
    *,
    reserve_patterns: Sequence[Pattern[str]] = identifiers.DEFAULT_RESERVE_PATTERNS,
    limit: int = 50,
    after: str | None = None,
    actor: audit.Actor | None = None,
) -> Page:
    """One page of matching messages, newest first. A patient search needs `actor` and is audited."""
    if not 1 <= limit <= MAX_PAGE:
        raise FilterError(f"--limit is from 1 to {MAX_PAGE}")
    ref = _patient(session, f, reserve_patterns, actor, "a search on a patient identifier")
    before = decode_cursor(after) if after else None
    rows = messages.newest(session, f, ref, limit=limit + 1, before=before)  # one more: is there a next page?
    page = Page(rows[:limit], encode_cursor(rows[limit - 1]) if len(rows) > limit else None)
    if ref is not None and actor is not None:
        details = {"filter": f.described(ref), "after": after, "found": [r.id for r in page.rows]}
        audit.record(session, actor, "search", details)
        session.commit()
    return page


def snapshot(
    session: Session,
    f: Filter,
    *,
    reserve_patterns: Sequence[Pattern[str]] = identifiers.DEFAULT_RESERVE_PATTERNS,
    actor: audit.Actor | None = None,
) -> tuple[list[int], str | None]:
    """Ids of every matching message, oldest first, and the patient_ref searched on (for the audit row
    the caller writes: replay, export and resolve record their filter with what they touched)."""
    if f.empty:
        raise FilterError("give message ids or at least one filter option; all messages is not a selection")
    ref = _patient(session, f, reserve_patterns, actor, "a selection on a patient identifier")
    return messages.matching_ids(session, f, ref), ref


def _patient(
    session: Session,
    f: Filter,
    reserve_patterns: Sequence[Pattern[str]],
    actor: audit.Actor | None,
    what: str,
) -> str | None:
    if not f.patient:
        return None
    if actor is None:
        raise audit.AuditRequired(f"{what} is recorded in the audit trail: give --operator USER-ID and --reason TEXT")
    return patient_ref_of(session, f.patient, reserve_patterns)


def find(session: Session, key: str) -> list[MessageRow]:
    """Rows an operator names: a row id (#12 or 12), or a message id (the original and its replays)."""
    text = key.strip().lstrip("#")
    if text.isdigit():
        row = messages.get(session, int(text))
        return [row] if row is not None else []
    return messages.with_message_id(session, text)


def summary(row: MessageRow, patient: str | None = None) -> dict[str, Any]:
    """One message as a list shows it; `patient` replaces the stored token when revealed."""
    return {
        "id": row.id,
        "received_at": utc(row.received_at).isoformat(),
        "direction": row.direction,
        "type": row.message_type,
        "customer": row.customer_number,
        "status": row.status,
        "message_id": row.message_id,
        "correlation_id": row.correlation_id,
        "order_ref": row.order_ref,
        "patient": patient if patient is not None else row.patient_ref,
        "attempts": row.attempts,
        "replay_of": row.replay_of,
        "error": row.last_error,
    }
