"""Failed messages grouped as operators act on them: by status, the rule or error class their last error
begins with, message type and customer. The store counts them by exact error (broker/store/queries.py);
the grouping by rule is here, so that one rule stays one group whatever values its texts carry."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from broker.store import Session, messages, queries
from replay import reveal
from replay.filters import Filter, FilterError

SHOWN_GROUPS = 200  # the Failures page and API list the largest groups; the rest are counted


def rule_of(error: str | None) -> str:
    """The rule or error class of a last error: "XSD-LENGTH at /x: ..." -> XSD-LENGTH, "publish: ..." ->
    publish (the texts broker/rejections.py and broker/store/outbox.py write)."""
    text = error or ""
    if not text.strip():
        return "(no error)"
    # Within the first 60 characters, or at 60: so that the head the store groups by (its first 64) says it.
    cut = min((i for i in (text.find(" at "), text.find(":")) if i > 0), default=len(text))
    return text[:cut][:60].strip() or "(no error)"


@dataclass
class FailureGroup:
    status: str
    rule: str
    message_type: str | None
    customer: str | None
    count: int = 0
    first_seen: datetime = field(default_factory=lambda: datetime.max.replace(tzinfo=UTC))
    last_seen: datetime = field(default_factory=lambda: datetime.min.replace(tzinfo=UTC))
    example: str | None = None

    @property
    def key(self) -> dict[str, str]:
        """What selects the group again (the form's hidden fields, the API's body)."""
        return {
            "status": self.status,
            "rule": self.rule,
            "type": self.message_type or "",
            "customer": self.customer or "",
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "example": self.example,
        }


def groups(session: Session) -> list[FailureGroup]:
    """Unresolved failures by status, rule, type and customer, the largest group first."""
    out: dict[tuple[str, str, str | None, str | None], FailureGroup] = {}
    for kind in queries.failure_kinds(session):
        rule = rule_of(kind.head)  # the head holds the rule: it ends within the first 60 characters
        key = (kind.status, rule, kind.message_type, kind.customer)
        group = out.setdefault(key, FailureGroup(kind.status, rule, kind.message_type, kind.customer))
        group.count += kind.count
        group.first_seen = min(group.first_seen, kind.first_seen)
        group.last_seen = max(group.last_seen, kind.last_seen)
        group.example = group.example or reveal.text_of((kind.example or "").encode(), revealed=False)
    return sorted(out.values(), key=lambda g: (-g.count, g.status, g.rule))


def group_ids(session: Session, key: Mapping[str, str]) -> tuple[list[int], dict[str, Any]]:
    """The ids of one failure group's messages now, and the selection the audit row records."""
    status = key.get("status") or ""
    if status not in ("parked", "rejected"):
        raise FilterError("a failure group's status is parked or rejected")
    rule = (key.get("rule") or "").strip()
    f = Filter(
        statuses=(status,),
        types=(key["type"],) if key.get("type") else (),
        customers=(key["customer"],) if key.get("customer") else (),
        error=rule if rule and rule != "(no error)" else None,
    )
    wanted_type = key.get("type") or None
    ids = [
        r.id
        for r in messages.by_ids(session, messages.matching_ids(session, f)).values()
        if r.message_type == wanted_type and rule_of(r.last_error) == rule
    ]
    return sorted(ids), {"group": dict(key), "filter": f.described()}
