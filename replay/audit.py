"""The audit trail: who did what to the store, when, and why.

Every replay, edit, reveal, export, resolve, prune and every search on a patient identifier leaves one
row. Rows are only ever added: the ORM refuses to change them (broker/store/tables.py) and so does the
database (triggers of migration 0002). A row names the operator's user id (--operator) and the account
the command ran under, so each action is traceable to a person even on a shared jump host.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from broker.store import Session
from broker.store import audit as audit_rows
from broker.store.tables import AuditRow


class AuditRequired(PermissionError):
    """The action touches personal data or changes the store: it needs an operator and a reason."""


def os_user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown"


@dataclass(frozen=True)
class Actor:
    operator: str  # the user id the action is done for
    reason: str
    os_user: str = field(default_factory=os_user_name)

    @classmethod
    def required(cls, operator: str | None, reason: str | None, what: str) -> Actor:
        """An actor with both an operator and a reason, or a clear refusal naming what needs them."""
        if not (operator or "").strip() or not (reason or "").strip():
            raise AuditRequired(f"{what} is recorded in the audit trail: give --operator USER-ID and --reason TEXT")
        return cls((operator or "").strip(), (reason or "").strip())


def record(session: Session, actor: Actor, action: str, details: dict[str, Any]) -> AuditRow:
    """Add one audit row to the session's transaction (committed with what it records)."""
    return audit_rows.append(
        session, actor=actor.operator, os_user=actor.os_user, action=action, reason=actor.reason, details=details
    )


def as_dict(row: AuditRow) -> dict[str, Any]:
    """One audit row as `hmc-broker audit --json` and the console show it."""
    at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
    return {
        "id": row.id,
        "at": at.isoformat(),
        "actor": row.actor,
        "os_user": row.os_user,
        "action": row.action,
        "reason": row.reason,
        "details": row.details,
    }
