"""A Rejection (avvisning): what an inbound message that could not be accepted gets back, with every reason.

It goes to the real sender, never to the customer the document names: a forged or mismatched message must
not land in its victim's queue. A security rejection ignores reply_to (as untrusted as the header). SESAM2
gets no Rejection: its refused messages are kept and reported for operators.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from broker import checks
from broker.config import Settings
from broker.contract import identifiers
from broker.envelope import Delivery, Exchange
from broker.model import messages as m
from broker.model.codes import Side
from broker.model.types import IdKind
from broker.store.unit_of_work import NewMessage
from broker.translation import BROKER_SYSTEM, derived_id


@dataclass(frozen=True)
class Addressed:
    rejection: m.Rejection
    exchange: Exchange
    routing_key: str


def rejection_for(
    settings: Settings, d: Delivery, row: NewMessage, message_id: str, problems: list[m.Problem]
) -> Addressed | None:
    """The Rejection and where it goes; None when nobody can be told (SESAM2, or an unknown sender)."""
    if d.side is not Side.CUSTOMER:
        return None
    customer = checks.sender(settings, d)
    security = any(p.rule.startswith("security.") for p in problems)
    if d.reply_to and not security:
        exchange, key = Exchange.DIRECT, d.reply_to
    elif customer:
        exchange, key = Exchange.CUSTOMER_OUT, f"{customer}.Rejection"
    else:
        return None
    rejection = m.Rejection(
        header=m.Header(
            message_id=derived_id(message_id, "rejection"),
            message_type="Rejection",
            sent_at=datetime.now(UTC).replace(microsecond=0),
            sender_system=BROKER_SYSTEM,
            customer_number=customer,
            correlation_id=_safe_reference(row.correlation_id),
            causation_id=message_id if _is_uuid(message_id) else None,
        ),
        received_at=row.received_at.replace(microsecond=0),
        problems=[_fit(p) for p in problems[:999]],
        rejected_message_id=message_id if _is_uuid(message_id) else None,
        rejected_type=(row.message_type or "")[:35] or None,
    )
    return Addressed(rejection, exchange, key)


def summary(problems: list[m.Problem]) -> str:
    return "; ".join(f"{p.rule} at {p.path or '/'}: {p.message}" for p in problems)[:4000]


def _fit(p: m.Problem) -> m.Problem:
    """Keep a problem within the Rejection schema's bounds."""
    return m.Problem(
        rule=p.rule[:35],
        message=(p.message or p.rule)[:4000],
        path=p.path[:200] if p.path else None,
        line=p.line if p.line and p.line > 0 else None,
        value=p.value[:200] if p.value else None,
    )


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _safe_reference(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return identifiers.check(IdKind.REFERENCE, value)
    except identifiers.IdentifierError:
        return None
