"""Patient identifiers stay masked in everything the operations commands print, unless revealed.

Masked: the list shows the stored patient_ref token; payloads and diffs pass broker.privacy.mask_text,
which replaces every personnummer-, samordningsnummer- and reservnummer-shaped run. Revealed (--reveal
with --operator and --reason): the identifier is read back from the stored payload, and an audit row
names the messages revealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.contract.dialect import ReadPolicy, read
from broker.model.messages import patient_id_of
from broker.privacy import mask_text
from broker.store import Session
from broker.store.tables import MessageRow
from replay import audit


def text_of(payload: bytes | None, revealed: bool) -> str | None:
    if payload is None:
        return None
    text = payload.decode("utf-8", errors="replace")
    return text if revealed else mask_text(text)


def properties_view(properties: dict[str, Any], revealed: bool) -> dict[str, Any]:
    """A row's properties to print: an edit's diff may hold a patient identifier."""
    note = properties.get("replay")
    if revealed or not isinstance(note, dict) or not note.get("diff"):
        return dict(properties)
    return {**properties, "replay": {**note, "diff": mask_text(str(note["diff"]))}}


def patient_in(payload: bytes | None, policy: ReadPolicy | None = None) -> str | None:
    """The patient identifier in a stored payload; None when pruned, unreadable or about no patient."""
    if payload is None:
        return None
    return patient_id_of(read(payload, policy).message)


def record(session: Session, actor: audit.Actor, rows: Sequence[MessageRow], what: str) -> None:
    """The audit row of a reveal, committed before anything is shown."""
    audit.record(session, actor, "reveal", {"what": what, "messages": [r.id for r in rows]})
    session.commit()
