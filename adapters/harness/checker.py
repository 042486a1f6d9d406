"""What was sent against what arrived at SESAM2, by message id: the one checker of the fault tests and the soak.

The broker forwards a customer message to SESAM2 under an id derived from the incoming one
(broker/translation.py derived_id), and the contract lets consumers de-duplicate on message_id. So:
- an arrival under the expected id is a delivery; a second one under the same id is a repeat, allowed and
  counted (a confirm lost with a connection, a batch redone after a crash);
- an arrival under any other id that names a sent message as its cause is a duplicate under a different id,
  which a consumer cannot recognise: a failure;
- a sent message that neither arrived nor was parked (with a reason, in the store) is lost: a failure;
- messages of one order (correlation id) must arrive in the order they were sent (first arrivals).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from broker.translation import derived_id

# The causation id in either dialect's header: the incoming message the broker's message was made from.
_CAUSATION = re.compile(rb"<(?:\w+:)?(?:ORSAKID|CausationId)>([^<]+)</")


def forwarded_id(source_id: str) -> str:
    """The id under which the broker forwards the message `source_id` (broker/translation.py forward)."""
    return derived_id(source_id, "translated")


def causation(body: bytes) -> str | None:
    found = _CAUSATION.search(body)
    return found.group(1).decode() if found else None


@dataclass(frozen=True)
class Sent:
    message_id: str
    correlation_id: str


@dataclass(frozen=True)
class Arrival:
    message_id: str
    causation_id: str | None


@dataclass
class Report:
    sent: int
    delivered: int  # distinct sent messages that arrived
    parked: int  # sent messages that did not arrive and are parked (or rejected) in the store with a reason
    lost: int
    repeats_same_id: int  # allowed: consumers de-duplicate on message_id
    duplicates_other_id: int
    unexpected: int  # arrivals that belong to no sent message
    out_of_order: int  # orders whose messages arrived out of the order sent
    examples: dict[str, list[str]] = field(default_factory=dict)  # a few ids per failure, for the reader

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicates_other_id or self.unexpected or self.out_of_order)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}

    def line(self) -> str:
        return (
            f"sent {self.sent}, delivered {self.delivered}, parked {self.parked}, lost {self.lost}, "
            f"repeats under the same id {self.repeats_same_id} (allowed), duplicates under other ids "
            f"{self.duplicates_other_id}, unexpected {self.unexpected}, orders out of order {self.out_of_order}"
        )


def check(sent: Sequence[Sent], arrived: Iterable[Arrival], parked: Mapping[str, str]) -> Report:
    """`parked`: incoming message id -> reason, as the store has it."""
    by_forward = {forwarded_id(s.message_id): s for s in sent}
    by_source = {s.message_id: s for s in sent}
    position = {s.message_id: i for i, s in enumerate(sent)}
    first: dict[str, int] = {}  # source id -> arrival rank of its first arrival
    repeats = other = unexpected = 0
    examples: defaultdict[str, list[str]] = defaultdict(list)
    for rank, a in enumerate(arrived):
        source = by_forward.get(a.message_id)
        if source is None:
            if a.causation_id in by_source:
                other += 1
                examples["duplicates_other_id"].append(a.message_id)
            else:
                unexpected += 1
                examples["unexpected"].append(a.message_id)
            continue
        if source.message_id in first:
            repeats += 1
        else:
            first[source.message_id] = rank
    missing = [s for s in sent if s.message_id not in first]
    parked_here = [s for s in missing if parked.get(s.message_id)]
    lost = [s.message_id for s in missing if not parked.get(s.message_id)]
    examples["lost"] = lost
    orders: defaultdict[str, list[str]] = defaultdict(list)
    for s in sent:
        if s.message_id in first:
            orders[s.correlation_id].append(s.message_id)
    disorder = []
    for correlation_id, ids in orders.items():
        arrival_ranks = [first[i] for i in ids]  # ids are in the order sent
        if arrival_ranks != sorted(arrival_ranks) or [position[i] for i in ids] != sorted(position[i] for i in ids):
            disorder.append(correlation_id)
    examples["out_of_order"] = disorder
    return Report(
        sent=len(sent),
        delivered=len(first),
        parked=len(parked_here),
        lost=len(lost),
        repeats_same_id=repeats,
        duplicates_other_id=other,
        unexpected=unexpected,
        out_of_order=len(disorder),
        examples={k: v[:5] for k, v in examples.items() if v},
    )
