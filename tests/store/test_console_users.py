"""`hmc-broker users`: accounts are made, listed, disabled and given a new password, each change audited;
refusals say what is wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from broker.cli import app
from broker.store.tables import AccountRow, AuditRow
from console import accounts
from tests.support.fixtures import Store

PASSWORD = "a long enough password"


def _run(store: Store, *args: str, stdin: str | None = None, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), input=stdin, env={"HMC_DB_URL": store.url}, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_users_are_added_listed_disabled_and_enabled_again_with_a_new_password(store: Store) -> None:
    _run(store, "users", "add", "anna", "--role", "operator,privacy", "--password-stdin", stdin=PASSWORD + "\n")
    token = _run(store, "users", "add", "grafana", "--service", "-r", "viewer").splitlines()[0]
    listing = _run(store, "users", "list")
    assert "anna" in listing and "operator, privacy" in listing and "service" in listing
    hour = timedelta(hours=1)
    with store.sessions() as session:
        assert accounts.login(session, "anna", PASSWORD, hour).roles == {"operator", "privacy"}
        assert accounts.by_token(session, token, hour).name == "grafana"
        session.commit()
    _run(store, "users", "disable", "anna")
    with store.sessions() as session, pytest.raises(accounts.LoginRefused, match="disabled"):
        accounts.login(session, "anna", PASSWORD, hour)
    _run(store, "users", "passwd", "anna", "--password-stdin", stdin="another long password\n")
    with store.sessions() as session:
        assert accounts.login(session, "anna", "another long password", hour).name == "anna"
        row = session.get(AccountRow, "anna")
        assert row is not None and row.password_hash is not None and row.password_hash.startswith("$argon2id$")
        ops = [r.details["op"] for r in session.scalars(select(AuditRow).where(AuditRow.action == "account"))]
    assert ops == ["add", "add", "disable", "passwd"]


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("users", "add", "bo", "-r", "superuser"), "unknown role 'superuser'"),
        (("users", "add", "bo bo", "-r", "viewer"), "is not an account name"),
        (("users", "add", "bo", "-r", "viewer"), "at least 12 characters"),
        (("users", "disable", "nobody"), "no account nobody"),
        (("users", "roles", "nobody", "-r", "invoice:1001"), "no account nobody"),
        (("users", "roles", "sso.anna", "-r", "invoice:1001"), "gives its roles at every login"),
        (("users", "roles", "sso.anna", "-r", "invoice:x"), "unknown role 'invoice:x'"),
    ],
)
def test_a_refused_account_change_says_why(store: Store, args: tuple[str, ...], says: str) -> None:
    with store.sessions() as session:
        accounts.single_sign_on(session, "sso.anna", ["operator"], timedelta(days=365))
        session.commit()
    output = _run(store, *args, "--password-stdin", stdin="short\n", code=2) if "add" in args else None
    output = output or _run(store, *args, code=2)
    assert says in output


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_disable_dormant_disables_only_the_accounts_unused_for_the_period(store: Store) -> None:
    _run(store, "users", "add", "old", "-r", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    _run(store, "users", "add", "new", "-r", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    with store.sessions() as session:
        long_ago = datetime.now(UTC) - timedelta(days=366)
        session.execute(update(AccountRow).where(AccountRow.name == "old").values(created_at=long_ago))
        session.commit()
    assert "disabled 1 account(s)" in _run(store, "users", "disable-dormant")
    with store.sessions() as session:
        assert {r.name: r.disabled for r in session.scalars(select(AccountRow))} == {"old": True, "new": False}
        row = session.scalars(select(AuditRow).where(AuditRow.action == "account").order_by(AuditRow.id.desc())).first()
        assert row is not None and row.details == {"op": "disable-dormant", "accounts": ["old"], "days": 365}


def _unused_since(store: Store, name: str, days: int) -> None:
    with store.sessions() as session:
        long_ago = datetime.now(UTC) - timedelta(days=days)
        session.execute(update(AccountRow).where(AccountRow.name == name).values(created_at=long_ago))
        session.commit()


def test_users_list_shows_an_account_unused_for_the_period_as_disabled_before_anything_records_it(
    store: Store,
) -> None:
    for name in ("old", "new"):
        _run(store, "users", "add", name, "-r", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    _unused_since(store, "old", 366)
    listed = {a["name"]: a["state"] for a in json.loads(_run(store, "users", "list", "--json"))}
    assert listed == {"old": "disabled (unused)", "new": "active"}
    assert "disabled (unused)" in _run(store, "users", "list")
    with store.sessions() as session:
        assert session.get(AccountRow, "old").disabled is False  # type: ignore[union-attr]  # listing changes nothing
    _run(store, "users", "disable", "new")
    listed = {a["name"]: a["state"] for a in json.loads(_run(store, "users", "list", "--json"))}
    assert listed == {"old": "disabled (unused)", "new": "disabled"}


def test_passwd_enables_an_account_unused_for_the_period_and_it_logs_in_again(store: Store) -> None:
    _run(store, "users", "add", "old", "-r", "viewer", "--password-stdin", stdin=PASSWORD + "\n")
    _unused_since(store, "old", 400)
    with store.sessions() as session, pytest.raises(accounts.LoginRefused, match="unused for too long"):
        accounts.login(session, "old", PASSWORD, timedelta(days=365))
    _run(store, "users", "passwd", "old", "--password-stdin", stdin="another long password\n")
    with store.sessions() as session:
        assert accounts.login(session, "old", "another long password", timedelta(days=365)).name == "old"
    assert json.loads(_run(store, "users", "list", "--json"))[0]["state"] == "active"
