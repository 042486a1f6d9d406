"""Failed messages grouped as operators act on them: by status and the rule or error class their last error
begins with, split by message type and customer as the operator asks (`by`). The store groups, counts and
pages them (broker/store/failures.py, an index-only aggregate); here they become what the page and the API
show, with an example error (masked) for the groups shown, and a group's key selects its messages again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from broker.store import Session
from broker.store import failures as failed
from broker.store.failures import DIMENSIONS, NO_ERROR, rule_of
from replay import reveal
from replay.filters import FilterError

__all__ = ["DIMENSIONS", "PAGE", "FailureGroup", "Page", "group_ids", "groups", "parse_by", "rule_of"]

PAGE = 100  # groups a page or an API answer lists, the largest first; `offset` pages on
MAX_PAGE = 1000


@dataclass
class FailureGroup:
    status: str
    rule: str
    message_type: str | None
    customer: str | None
    split: frozenset[str]  # the dimensions (type, customer) the group is split by
    count: int
    first_seen: datetime
    last_seen: datetime
    example: str | None = None

    @property
    def key(self) -> dict[str, str]:
        """What selects the group again (the form's hidden fields, the API's body): status and rule, and the
        type and customer only when the group is split by them ("" for messages without one)."""
        out = {"status": self.status, "rule": self.rule}
        if "type" in self.split:
            out["type"] = self.message_type or ""
        if "customer" in self.split:
            out["customer"] = self.customer or ""
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.key,
            "count": self.count,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "example": self.example,
        }


@dataclass(frozen=True)
class Page:
    groups: list[FailureGroup]
    by: tuple[str, ...]
    offset: int
    total_groups: int
    total_messages: int

    @property
    def next_offset(self) -> int | None:
        after = self.offset + len(self.groups)
        return after if after < self.total_groups else None

    @property
    def more_groups(self) -> int:
        """Groups after this page."""
        return max(0, self.total_groups - self.offset - len(self.groups))

    @property
    def more_messages(self) -> int:
        """Unresolved failures in the groups not on this page."""
        return max(0, self.total_messages - sum(g.count for g in self.groups))


def parse_by(text: str | None) -> tuple[str, ...]:
    """`by`: the dimensions to split groups by, comma-separated ("type,customer", the default; "type";
    "customer"; "" or "rule": by status and rule only)."""
    if text is None:
        return DIMENSIONS
    wanted = [part.strip() for part in text.split(",") if part.strip() and part.strip() != "rule"]
    unknown = [part for part in wanted if part not in DIMENSIONS]
    if unknown:
        raise FilterError(
            f"groups are split by {' and '.join(DIMENSIONS)} (or by rule alone), not {', '.join(unknown)}"
        )
    return tuple(d for d in DIMENSIONS if d in wanted)


def groups(session: Session, by: tuple[str, ...] = DIMENSIONS, *, limit: int = PAGE, offset: int = 0) -> Page:
    """A page of unresolved failure groups, the largest first, with the totals."""
    if not 1 <= limit <= MAX_PAGE:
        raise FilterError(f"limit is from 1 to {MAX_PAGE}")
    if offset < 0:
        raise FilterError("offset is 0 or more")
    found = failed.groups(session, by, limit=limit, offset=offset)
    examples = failed.errors_of(session, (g.newest for g in found.rows))
    shown = [
        FailureGroup(
            g.status,
            g.rule,
            g.message_type,
            g.customer,
            g.split,
            g.count,
            g.first_seen,
            g.last_seen,
            reveal.text_of((examples.get(g.newest) or "").encode(), revealed=False) or None,
        )
        for g in found.rows
    ]
    return Page(shown, by, offset, found.groups, found.messages)


def group_ids(session: Session, key: Mapping[str, Any]) -> tuple[list[int], dict[str, Any]]:
    """The ids of one failure group's messages now, and the selection the audit row records. The key is
    what FailureGroup.key gives: a type or customer present splits the group ("" for none), absent is any."""
    status = str(key.get("status") or "")
    if status not in failed.FAILED:
        raise FilterError("a failure group's status is parked or rejected")
    rule = str(key.get("rule") or "").strip() or NO_ERROR
    split = {d: (str(key[d]).strip() or None) for d in DIMENSIONS if d in key and key[d] is not None}
    group = {"status": status, "rule": rule, **{d: v or "" for d, v in split.items()}}
    return failed.group_ids(session, status, rule, split), {"group": group}
