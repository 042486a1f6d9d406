"""What an operator selects messages by, and the times and periods they type.

One Filter serves search, show, replay, export and resolve, so that a dry run, a replay and a search
with the same options select the same messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from broker.store.messages import Criteria

STATUSES = (
    "received",
    "rejected",
    "forwarded",
    "delivered",
    "answered",
    "parked",
    "skipped",
    "repeat",
    "replayed",
    "resolved",
)
MAX_IDS = 1000  # row ids in one filter: a bounded IN list, as a page is bounded
_PERIOD = re.compile(r"(?P<n>[0-9]+)\s*(?P<unit>s|m|min|h|d|w|y)", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class FilterError(ValueError):
    """An option an operator typed cannot be used; the message says what is expected."""


@dataclass(frozen=True)
class Filter(Criteria):
    """The store's criteria (broker/store/messages.py) as an operator gives them: checked, and described
    for the audit trail with the patient identifier masked."""

    def __post_init__(self) -> None:
        if len(self.ids) > MAX_IDS:
            raise FilterError(f"at most {MAX_IDS} row ids in one filter; for more, select by other options")
        unknown = [s for s in self.statuses if s not in STATUSES]
        if unknown:
            raise FilterError(f"unknown status {', '.join(unknown)}; one of {', '.join(STATUSES)}")
        if self.direction not in (None, "inbound", "outbound"):
            raise FilterError("direction is inbound (from customer systems) or outbound (from SESAM2)")
        if self.error is not None and not self.error.strip():
            raise FilterError("error text is empty")

    @property
    def empty(self) -> bool:
        return self == Filter(originals_only=self.originals_only)

    def described(self, patient_ref: str | None = None) -> dict[str, Any]:
        """The filter as the audit and job tables keep it: set options only, the patient id masked."""
        values = asdict(replace(self, patient=patient_ref if self.patient else None))
        out: dict[str, Any] = {}
        for key, value in values.items():
            if value in (None, (), False):
                continue
            out[key] = value.isoformat() if isinstance(value, datetime) else value
        return out


def parse_row_ids(values: Iterable[str]) -> tuple[int, ...]:
    """Row ids as an operator types them, on the command line or in the console: 12 or #12, repeated or
    comma-separated (`messages list --id 12,#13 --id 14`, the Messages page's field `12, #13, 14`). In the
    order given, without repeats. A message id is not a row id: that is the message_id filter."""
    out: dict[int, None] = {}
    for item in values:
        for part in item.split(","):
            text = part.strip().lstrip("#").strip()
            if not text:
                continue
            if not text.isdigit() or not text.isascii():
                raise FilterError(f"{part.strip()!r} is not a row id: row ids are numbers, e.g. 12 or #12")
            out[int(text)] = None
    return tuple(out)


def parse_period(text: str) -> timedelta:
    """'90d', '12h', '30m', '2w', '10y', or a combination like '1d12h'."""
    spec = text.strip()
    total, at = 0, 0
    for match in _PERIOD.finditer(spec):
        if spec[at : match.start()].strip():
            break
        total += int(match["n"]) * _UNITS[match["unit"].lower()]
        at = match.end()
    if at == 0 or spec[at:].strip():
        raise FilterError(f"{text!r} is not a period: use e.g. 90d, 12h, 30m, 2w or 10y")
    return timedelta(seconds=total)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A point in time: ISO 8601 ('2026-11-24', '2026-11-24T03:00+01:00') or a period ago ('3h')."""
    now = now or datetime.now(UTC)
    try:
        return now - parse_period(text)
    except FilterError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise FilterError(f"{text!r} is neither a time (2026-11-24T03:00+01:00) nor a period ago (3h)") from None
    if when.tzinfo is None:
        when = when.astimezone()  # a time without offset is the operator's local time
    return when.astimezone(UTC)
