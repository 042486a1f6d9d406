"""Who may use the console, and what each may do: local accounts, service tokens and roles.

Passwords are kept as argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommendation); a
service account has a random bearer token, of which only the SHA-256 is kept (the token has 256 bits of
entropy, so a fast hash is enough; argon2 would cost every API call tens of milliseconds). Logins are
throttled per account: after `THROTTLE_AFTER` failures in a row the account refuses every password for a
while, doubling up to an hour, so guessing costs days. An account unused for HMC_CONSOLE_DORMANT_DAYS
(365: the regions' access routine) is disabled when it next tries, and an admin enables it again with
`hmc-broker users passwd`.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from broker.handlers import invoices
from broker.store import Session
from broker.store import accounts as rows
from broker.store.tables import AccountRow
from broker.store.unit_of_work import now

VIEWER, OPERATOR, PRIVACY = "viewer", "operator", "privacy"
ADMIN = invoices.ADMIN_ROLE
INVOICE = invoices.INVOICE_ROLE  # invoice:1001 exports customer 1001's invoice data (broker/handlers/invoices.py)
ROLES = (VIEWER, OPERATOR, PRIVACY, ADMIN)
THROTTLE_AFTER = 5
MIN_PASSWORD = 12
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
_hasher = PasswordHasher()
# Verified against when the account does not exist, so that a wrong name costs what a wrong password does.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))


class AccountError(ValueError):
    """An account cannot be made or changed as asked; the message says why."""


class LoginRefused(PermissionError):
    """The name, the password or the account's state refuses the login; the message is safe to show."""


@dataclass(frozen=True)
class Identity:
    """The authenticated user of a request: what the audit trail names, and what it may do."""

    name: str
    roles: frozenset[str]
    kind: str = "person"  # person / service

    def may(self, role: str) -> bool:
        return ADMIN in self.roles or role in self.roles or (role == VIEWER and bool(self.roles))

    def exports_invoices_of(self, customer: str) -> bool:
        return invoices.may_export(self.roles, customer)

    @classmethod
    def of(cls, row: AccountRow) -> Identity:
        return cls(row.name, frozenset(str(r) for r in row.roles), row.kind)


def checked_roles(roles: Iterable[str]) -> list[str]:
    out: list[str] = []
    for role in (r.strip() for r in roles):
        if not role:
            continue
        if role not in ROLES and not (role.startswith(INVOICE) and role[len(INVOICE) :].isdigit()):
            raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}, or invoice:CUSTOMER-NUMBER")
        out.append(role)
    if not out:
        raise AccountError(f"give at least one role ({', '.join(ROLES)}, invoice:CUSTOMER-NUMBER)")
    return sorted(set(out))


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise AccountError(f"{name!r} is not an account name: letters, digits and . _ @ - (at most 100)")
    return name


def _checked_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    return password


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_person(session: Session, name: str, password: str, roles: Iterable[str]) -> AccountRow:
    if rows.get(session, _checked_name(name)) is not None:
        raise AccountError(f"account {name} exists already")
    return rows.add(
        session,
        name,
        kind="person",
        roles=checked_roles(roles),
        password_hash=_hasher.hash(_checked_password(password)),
    )


def add_service(session: Session, name: str, roles: Iterable[str]) -> tuple[AccountRow, str]:
    """A service account and its bearer token (shown once: only its hash is kept)."""
    if rows.get(session, _checked_name(name)) is not None:
        raise AccountError(f"account {name} exists already")
    token = secrets.token_urlsafe(32)
    row = rows.add(session, name, kind="service", roles=checked_roles(roles), token_hash=token_hash(token))
    return row, token


def existing(session: Session, name: str) -> AccountRow:
    row = rows.get(session, name)
    if row is None:
        raise AccountError(f"no account {name}")
    return row


def set_password(session: Session, name: str, password: str) -> None:
    """A new password; it also enables a disabled account and lifts a throttle (an admin's decision)."""
    row = existing(session, name)
    if row.kind != "person":
        raise AccountError(f"{name} is a service account: it has a token, not a password")
    row.password_hash = _hasher.hash(_checked_password(password))
    # The year is counted again from the admin's decision: with no use recorded, an account made over a year
    # ago would be dormant again at once (broker/store/accounts.py counts from its creation then).
    row.disabled, row.failed_logins, row.locked_until, row.last_used_at = False, 0, None, now()


def disable(session: Session, name: str) -> None:
    existing(session, name).disabled = True


def set_roles(session: Session, name: str, roles: Iterable[str]) -> tuple[list[str], list[str]]:
    """Give an account exactly these roles (e.g. invoice:1001 to an operator who exports invoice data); the
    roles it had and has. A single sign-on account's roles come from the IdP at every login instead."""
    wanted = checked_roles(roles)
    row = existing(session, name)
    if row.kind == "sso":
        raise AccountError(f"{name} signs on through the IdP, which gives its roles at every login (role map)")
    before, row.roles = list(row.roles), wanted
    return before, list(row.roles)


def disable_dormant(session: Session, dormant_after: timedelta) -> list[str]:
    """Disable every active account unused for `dormant_after` (the regions' access routine, run on a
    schedule rather than waiting for the next login); their names. The caller commits."""
    at = now()
    out = []
    for row in rows.listing(session):
        if not row.disabled and rows.dormant(row, dormant_after, at):
            row.disabled = True
            out.append(row.name)
    return out


def _usable(row: AccountRow, dormant_after: timedelta, at: datetime) -> None:
    if row.disabled:
        raise LoginRefused("this account is disabled: ask an administrator")
    if rows.dormant(row, dormant_after, at):
        row.disabled = True
        raise LoginRefused("this account was unused for too long and is now disabled: ask an administrator")


def login(session: Session, name: str, password: str, dormant_after: timedelta) -> Identity:
    """Check a person's password, with throttling; the caller commits (failures are counted too)."""
    at = now()
    row = rows.get(session, name)
    if row is None or row.kind != "person" or row.password_hash is None:
        _verify(_DUMMY, password)
        raise LoginRefused("wrong name or password")
    locked = row.locked_until
    if locked is not None and (locked if locked.tzinfo else locked.replace(tzinfo=UTC)) > at:
        raise LoginRefused("too many failed logins: try again later")
    if not _verify(row.password_hash, password):
        row.failed_logins += 1
        if row.failed_logins >= THROTTLE_AFTER:
            pause = min(3600, 30 * 2 ** (row.failed_logins - THROTTLE_AFTER))
            row.locked_until = at + timedelta(seconds=pause)
        raise LoginRefused("wrong name or password")
    _usable(row, dormant_after, at)
    if _hasher.check_needs_rehash(row.password_hash):
        row.password_hash = _hasher.hash(password)
    row.failed_logins, row.locked_until, row.last_used_at = 0, None, at
    return Identity.of(row)


def single_sign_on(session: Session, name: str, roles: list[str], dormant_after: timedelta) -> Identity:
    """The account of someone the IdP vouched for (console/oidc.py): made at the first login, its roles those
    the IdP's claims give this time; a disabled or dormant one is refused as a local one is. The caller
    commits."""
    at = now()
    row = rows.get(session, _checked_name(name))
    if row is None:
        row = rows.add(session, name, kind="sso", roles=checked_roles(roles))
        row.last_used_at = at
    elif row.kind != "sso":
        raise LoginRefused(f"{name} is a local account here: log in with its password")
    _usable(row, dormant_after, at)
    row.roles, row.last_used_at = checked_roles(roles), at
    return Identity.of(row)


def by_token(session: Session, token: str, dormant_after: timedelta) -> Identity:
    """The service account of a bearer token; the caller commits (its last use is recorded)."""
    row = rows.by_token(session, token_hash(token))
    if row is None:
        raise LoginRefused("unknown token")
    at = now()
    _usable(row, dormant_after, at)
    row.last_used_at = at
    return Identity.of(row)


def current(session: Session, name: str) -> Identity | None:
    """The account behind a session, as it is now: a disabled account's session ends at its next request."""
    row = rows.get(session, name)
    if row is None or row.disabled:
        return None
    return Identity.of(row)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False
