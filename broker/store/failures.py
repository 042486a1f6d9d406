"""Unresolved failures (parked and rejected messages) grouped as operators act on them: by status and the
rule or error class their last error begins with, and, as the operator asks, by message type and customer.

The rule is written beside the error (messages.error_rule, migration 0009) and a partial index holds the
failed rows only, by (status, error_rule, message_type, customer_number, received_at, id): counting them
by group is then an index-only aggregate that never reads the table. Before it, the console counted by the
head of the error text and grouped the heads in Python: 45,000 failures spread over a 1,000,000-message
PostgreSQL store cost 38,000 table pages and 12,840 rows to group, 0.8-1.1 s a page (README, "Benchmark").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from broker.store.error_rules import NO_ERROR, rule_of
from broker.store.tables import MessageRow

__all__ = ["DIMENSIONS", "FAILED", "NO_ERROR", "Group", "Groups", "errors_of", "group_ids", "groups", "rule_of"]

FAILED = ("parked", "rejected")
DIMENSIONS = ("type", "customer")  # what groups may be split by, beside status and rule


@dataclass(frozen=True)
class Group:
    """One group of failures; type and customer are None when the group is not split by them (`by`), and
    also when the messages have none (a rejection before the type or customer was known): `split` says."""

    status: str
    rule: str
    message_type: str | None
    customer: str | None
    split: frozenset[str]
    count: int
    first_seen: datetime
    last_seen: datetime
    newest: int  # the row id of the group's newest failure: its error is the example shown


@dataclass(frozen=True)
class Groups:
    rows: list[Group]
    groups: int  # every group, not only this page's
    messages: int  # every unresolved failure


def groups(session: Session, by: Collection[str], *, limit: int, offset: int = 0) -> Groups:
    """A page of groups, the largest first, and the totals. One statement: the aggregate over the partial
    index, its window totals, ordered and limited in the database, so the page costs the same whatever the
    number of groups. Paged by offset: every page costs the aggregate, which keyset paging would not save."""
    m = MessageRow
    split = frozenset(d for d in DIMENSIONS if d in by)
    keys: list[Any] = [m.status, m.error_rule]
    if "type" in split:
        keys.append(m.message_type)
    if "customer" in split:
        keys.append(m.customer_number)
    count = func.count()
    query = (
        select(
            *keys,
            count,
            func.min(m.received_at),
            func.max(m.received_at),
            func.max(m.id),
            func.count().over(),
            func.sum(count).over(),
        )
        .where(m.status.in_(FAILED))
        .group_by(*keys)
        .order_by(count.desc(), *keys)
        .limit(limit)
        .offset(offset)
    )
    rows: list[Group] = []
    total_groups = total_messages = 0
    for row in session.execute(query):
        values = list(row)
        status, rule = values[0], values[1]
        message_type = values[2] if "type" in split else None
        customer = values[2 + ("type" in split)] if "customer" in split else None
        n, first, last, newest, total_groups, total_messages = values[len(keys) :]
        rows.append(
            Group(status, rule or NO_ERROR, message_type, customer, split, n, _aware(first), _aware(last), newest)
        )
    if not rows and offset:
        return Groups([], *_totals(session))
    return Groups(rows, int(total_groups or 0), int(total_messages or 0))


def _totals(session: Session) -> tuple[int, int]:
    m = MessageRow
    per_group = select(func.count().label("n")).where(m.status.in_(FAILED)).group_by(m.status, m.error_rule).subquery()
    found = session.execute(select(func.count(), func.coalesce(func.sum(per_group.c.n), 0))).one()
    return int(found[0]), int(found[1])


def errors_of(session: Session, pks: Iterable[int]) -> dict[int, str | None]:
    """The last error of these rows (a page's examples: one indexed read per group shown)."""
    wanted = list(pks)
    if not wanted:
        return {}
    query = select(MessageRow.id, MessageRow.last_error).where(MessageRow.id.in_(wanted))
    return {pk: error for pk, error in session.execute(query)}


def group_ids(session: Session, status: str, rule: str, split: Mapping[str, str | None]) -> list[int]:
    """The ids of one group's messages now, oldest first. `split` holds the dimensions the group was split
    by (type, customer) with their value, None for messages without one; a dimension left out is any."""
    m = MessageRow
    where: list[ColumnElement[bool]] = [m.status.in_(FAILED), m.status == status]  # the partial index's condition
    where.append(m.error_rule.is_(None) if rule == NO_ERROR else m.error_rule == rule)
    for name, column in (("type", m.message_type), ("customer", m.customer_number)):
        if name in split:
            value = split[name]
            where.append(column.is_(None) if value is None else column == value)
    return list(session.scalars(select(m.id).where(*where).order_by(m.id)))


def _aware(when: datetime) -> datetime:
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
