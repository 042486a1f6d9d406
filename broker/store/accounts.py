"""The console's accounts (table accounts): added, found, changed; never deleted (audit rows name them).

Who may do what, and how passwords and tokens are checked, is console/accounts.py's; these are its statements.
"""

from __future__ import annotations

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
