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
from broker.model import messages as m
from broker.model.messages import patient_id_of
from broker.privacy import WITHHELD, flagged_protected, inherited_texts, mask_text, protected_texts, withhold
from broker.store import Session, messages
from broker.store.tables import MessageRow
from replay import audit


def text_of(payload: bytes | None, revealed: bool, opening: m.Message | None = None) -> str | None:
    """A payload to print: identifiers masked unless revealed; a protected patient's name and addresses
    withheld always (a reveal shows identifiers, never where a protected person lives). `opening`: the message
    that opened the order this one is about, when it names a protected patient (opening_of): the protection
    holds for SESAM2's answers too, which carry no patient and so no flag."""
    if payload is None:
        return None
    message = read(payload).message
    if message is None and (opening is not None or flagged_protected(payload)):  # which texts are personal?
        return f"{WITHHELD} (the document concerns a patient with protected identity and is not valid)"
    texts = protected_texts(message) + inherited_texts(message, opening)
    text = withhold(payload.decode("utf-8", errors="replace"), texts)
    return text if revealed else mask_text(text)


def opening_of(session: Session, row: MessageRow) -> m.Message | None:
    """The message that opened the order `row` is about, when it names a patient with protected identity
    (else None, and None for the opening message itself, which speaks for itself)."""
    if not row.customer_number or not row.order_ref:
        return None
    found = messages.opening(session, row.customer_number, row.order_ref)
    if found is None or found.id == row.id or found.message_id == row.message_id or found.payload is None:
        return None
    message = read(found.payload).message
    return message if protected_texts(message) else None


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
