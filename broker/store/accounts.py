"""The console's accounts (table accounts): added, found, changed; never deleted (audit rows name them).

Who may do what, and how passwords and tokens are checked, is console/accounts.py's; these are its statements,
and the one rule every path that acts as an account reads: whether it is dormant (`dormant`, `enabled`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.store.tables import AccountRow
from broker.store.unit_of_work import now


def add(
    session: Session,
    name: str,
    *,
    kind: str,
    roles: list[str],
    password_hash: str | None = None,
    token_hash: str | None = None,
) -> AccountRow:
    row = AccountRow(
        name=name,
        kind=kind,
        roles=roles,
        password_hash=password_hash,
        token_hash=token_hash,
        disabled=False,
        created_at=now(),
        last_used_at=None,
        failed_logins=0,
        locked_until=None,
    )
    session.add(row)
    session.flush()
    return row


def get(session: Session, name: str) -> AccountRow | None:
    return session.get(AccountRow, name)


def by_token(session: Session, token_hash: str) -> AccountRow | None:
    return session.scalars(select(AccountRow).where(AccountRow.token_hash == token_hash)).one_or_none()


def listing(session: Session) -> list[AccountRow]:
    return list(session.scalars(select(AccountRow).order_by(AccountRow.name)))


def dormant(row: AccountRow, after: timedelta, at: datetime) -> bool:
    """Unused for longer than `after` (HMC_CONSOLE_DORMANT_DAYS, 365: the regions' access routine) since its
    last use, or since it was made if never used: such an account is disabled.

    The one place of the rule: the console's logins and tokens (console/accounts.py), `hmc-broker users list`
    and `users disable-dormant` (console/cli.py), and the account an invoice export names with --operator
    (adapters/exports/files.py) all read it here.
    """
    last = row.last_used_at or row.created_at
    return at - (last if last.tzinfo else last.replace(tzinfo=UTC)) > after


def enabled(row: AccountRow, dormant_after: timedelta, at: datetime) -> bool:
    """Neither disabled nor dormant (a dormant account is disabled at its next use, or by users disable-dormant)."""
    return not row.disabled and not dormant(row, dormant_after, at)
