"""Patient identifiers stay masked in everything the operations commands print, unless revealed.

Masked: the list shows the stored patient_ref token; payloads and diffs pass broker.privacy.mask_text,
which replaces every personnummer-, samordningsnummer- and reservnummer-shaped run. A patient with protected
identity has name and addresses withheld in every payload shown, revealed or not. Revealed (--reveal
with --operator and --reason): the identifier is read back from the stored payload, and an audit row
names the messages revealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from broker.contract.dialect import ReadPolicy, read
from broker.model.messages import patient_id_of
from broker.privacy import WITHHELD, flagged_protected, mask_text, withhold_protected
from broker.store import Session
from broker.store.tables import MessageRow
from replay import audit


def text_of(payload: bytes | None, revealed: bool) -> str | None:
    """A payload to print: identifiers masked unless revealed; a protected patient's name and addresses
    withheld always (a reveal shows identifiers, never where a protected person lives)."""
    if payload is None:
        return None
    message = read(payload).message
    if message is None and flagged_protected(payload):  # invalid: which texts are personal is unknown
        return f"{WITHHELD} (the document names a patient with protected identity and is not valid)"
    text = withhold_protected(payload.decode("utf-8", errors="replace"), message)
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
