"""Retention: payloads of settled messages are removed once they are old enough.

A message's row, its events and where it went stay (the history an operator reads); its payload, the
bodies of what it sent, an edit's diff and its patient_ref go, so that nothing about the patient
outlives the retention period. Only settled messages are pruned: delivered, answered, skipped
(a replay that found everything sent), replayed or resolved. Rejected and parked messages wait until a
replay or an operator resolves them; in-flight ones (received, forwarded) are never touched.

Retention is per message type, HMC_RETENTION="default=90d,InvoiceData=3650d" (default 90 days). A
payload goes only when it is older than both its type's retention and --older-than: the command line
can keep more, never less, than the policy.

HMC_RETENTION is read here, not in broker/config.py, because only this command uses it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from broker.store import Session, sessionmaker
from broker.store.retention import Prunable, measure, remove_payloads
from broker.store.unit_of_work import now
from replay import audit
from replay.filters import FilterError, parse_period

SETTLED = ("delivered", "answered", "skipped", "repeat", "replayed", "resolved")
DEFAULT_RETENTION = timedelta(days=90)


@dataclass(frozen=True)
class Retention:
    default: timedelta = DEFAULT_RETENTION
    per_type: Mapping[str, timedelta] = field(default_factory=dict)

    @classmethod
    def parse(cls, spec: str) -> Retention:
        """`default=90d,InvoiceData=3650d`: a period per message type, and one for all others."""
        default, per_type = DEFAULT_RETENTION, {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, period = item.partition("=")
            if not sep or not name.strip():
                raise FilterError(f"HMC_RETENTION: {item!r} is not TYPE=PERIOD (e.g. InvoiceData=3650d)")
            value = parse_period(period)
            if name.strip() == "default":
                default = value
            else:
                per_type[name.strip()] = value
        return cls(default, per_type)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Retention:
        return cls.parse((os.environ if env is None else env).get("HMC_RETENTION", ""))


@dataclass(frozen=True)
class Removed:
    """What prune removes (or, in a dry run, would) for one message type."""

    message_type: str  # "(other types)" for every type under the default retention
    keep: timedelta
    cutoff: datetime
    messages: int
    payload_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "type": self.message_type,
            "keep_days": self.keep / timedelta(days=1),
            "cutoff": self.cutoff.isoformat(),
            "messages": self.messages,
            "payload_bytes": self.payload_bytes,
        }


OTHERS = "(other types)"


_Class = tuple[str, timedelta, tuple[str, ...], bool]  # label, period kept, types, all others but those


def _classes(retention: Retention, older_than: timedelta | None) -> list[_Class]:
    """The retention classes: one per type named in the policy, one for all other types."""
    floor = older_than or timedelta(0)
    classes: list[_Class] = [
        (name, max(period, floor), (name,), False) for name, period in sorted(retention.per_type.items())
    ]
    classes.append((OTHERS, max(retention.default, floor), tuple(retention.per_type), True))
    return classes


def plan(session: Session, retention: Retention, older_than: timedelta | None) -> list[Removed]:
    at = now()
    out = []
    for label, keep, types, others in _classes(retention, older_than):
        cutoff = at - keep
        count, size = measure(session, Prunable(SETTLED, cutoff, types, others))
        out.append(Removed(label, keep, cutoff, count, size))
    return out


def prune(
    sessions: sessionmaker[Session],
    retention: Retention,
    *,
    older_than: timedelta | None,
    actor: audit.Actor,
    dry_run: bool = False,
    chunk: int = 1000,
) -> list[Removed]:
    """Remove what the retention allows, `chunk` messages per transaction; what was (or would be) removed."""
    with sessions() as session:
        planned = plan(session, retention, older_than)
        if dry_run or not any(r.messages for r in planned):
            return planned
        audit.record(
            session,
            actor,
            "prune",
            {
                "older_than_days": older_than / timedelta(days=1) if older_than else None,
                "retention": {r.message_type: r.keep / timedelta(days=1) for r in planned},
                "planned": [r.as_dict() for r in planned],
            },
        )
        session.commit()
    classes = {label: (types, others) for label, _keep, types, others in _classes(retention, older_than)}
    done = []
    for planned_one in planned:
        count, size = 0, 0
        prunable = Prunable(SETTLED, planned_one.cutoff, *classes[planned_one.message_type])
        detail = f"payload removed after the retention period ({planned_one.keep / timedelta(days=1):g} days)"
        while True:  # a transaction per chunk: a prune of millions never holds one long
            with sessions() as session:
                pruned, pruned_size = remove_payloads(session, prunable, chunk, detail)
                session.commit()
            if not pruned:
                break
            count, size = count + pruned, size + pruned_size
        done.append(Removed(planned_one.message_type, planned_one.keep, planned_one.cutoff, count, size))
    return done
