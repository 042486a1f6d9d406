"""Editing a stored payload before replaying it.

The stored message is never changed: the edited payload becomes a new row (a replay of the original)
that keeps the diff. What routes a message cannot change: its customer number and its type (root
element and header MessageType) decide who receives it and under whose authority it came in, and its
MessageId links it to the original; an edit that changes any of them is refused.
"""

from __future__ import annotations

import difflib
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from broker.contract.dialect import Parsed, ReadPolicy, read
from broker.privacy import WITHHELD, flagged_protected, identity_texts, withhold


class EditRefused(ValueError):
    """The edited payload may not be replayed; the message says which field changed."""


def in_editor(payload: bytes, name: str) -> bytes:
    """Let the operator edit `payload` in $VISUAL or $EDITOR (vi if neither), in a private temp file."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    # The file holds patient data: readable by the operator only, and removed right after.
    with tempfile.TemporaryDirectory(prefix="hmc-edit-") as folder:
        path = Path(folder) / name
        path.write_bytes(payload)
        path.chmod(0o600)
        result = subprocess.run([*shlex.split(editor), str(path)], check=False)
        if result.returncode != 0:
            raise EditRefused(f"the editor ({editor}) exited with {result.returncode}: nothing replayed")
        return path.read_bytes()


def _routing(parsed: Parsed) -> dict[str, str | None]:
    header = parsed.message.header if parsed.message is not None else None
    return {
        "message type": parsed.root_name,
        "header MessageType": header.message_type if header else None,
        "CustomerNumber": (header.customer_number if header else None) or parsed.claimed_customer,
        "MessageId": (header.message_id if header else None) or parsed.claimed_message_id,
    }


def check(original: bytes, edited: bytes, policy: ReadPolicy | None = None) -> None:
    """Refuse an edit that is not XML or changes a routing field; schema errors are left to the
    pipeline, which rejects them as it would any message (a dry run shows it first)."""
    if edited == original:
        raise EditRefused("the payload is unchanged: nothing to replay")
    after = read(edited, policy)
    if after.root_name is None:
        problems = "; ".join(f"{p.rule}: {p.message}" for p in after.problems) or "unreadable"
        raise EditRefused(f"the edited payload is not well-formed XML ({problems})")
    before = _routing(read(original, policy))
    now = _routing(after)
    for field_name, value in before.items():
        # A field the stored payload does not say (it was invalid there) has nothing to keep.
        if value is not None and now[field_name] != value:
            raise EditRefused(
                f"the edit changes the routing field {field_name} ({value!r} -> {now[field_name]!r}); "
                "routing fields cannot change: the customer system must send a new message"
            )


def unified_diff(original: bytes, edited: bytes, name: str, policy: ReadPolicy | None = None) -> str:
    """The edit as a diff, which the operator is shown and the replay keeps: for a patient with protected
    identity, before or after the edit (an edit may take the flag away, or change the street), the name and
    addresses of both sides are withheld, as in every listing and export. When a side that names a
    protected patient is not valid, which texts are personal is unknown: the diff is withheld whole."""
    stored, changed = read(original, policy), read(edited, policy)
    texts: list[str] = []
    if _protected(stored, original) or _protected(changed, edited):
        if stored.message is None or changed.message is None:
            return f"{WITHHELD} (the edit concerns a patient with protected identity and a side is not valid)\n"
        texts = identity_texts(stored.message) + identity_texts(changed.message)
    before = original.decode("utf-8", errors="replace").splitlines(keepends=True)
    after = edited.decode("utf-8", errors="replace").splitlines(keepends=True)
    # Diffed first, withheld after: a changed street still shows as a changed line, without either street.
    return withhold("".join(difflib.unified_diff(before, after, f"stored/{name}", f"edited/{name}")), texts)


def _protected(parsed: Parsed, payload: bytes) -> bool:
    patient = getattr(parsed.message, "patient", None)
    return bool(getattr(patient, "protected", False)) or flagged_protected(payload)
