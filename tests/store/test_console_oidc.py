"""Single sign-on through OpenID Connect (authorization code with PKCE) against a tiny identity provider
served on 127.0.0.1 (tests/support/idp.py): claims name the account and give its roles; the login is
audited; no role, a tampered state or a disabled account is refused."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, update
from starlette.testclient import TestClient

from broker.store.tables import AccountRow, AuditRow
from console.app import create_app
from console.cli import in_thread
from console.oidc import SingleSignOn
from tests.support.console import SECRET, client, console_of
from tests.support.idp import CLIENT_ID, CLIENT_SECRET, FakeIdp
from tests.support.replaying import Broker


@pytest.fixture
def idp() -> Iterator[FakeIdp]:
    provider = FakeIdp()
    with in_thread(provider.app()) as url:
        provider.url = url
        yield provider


@pytest.fixture
def http(broker: Broker, idp: FakeIdp) -> TestClient:
    settings = dataclasses.replace(
        broker.settings,
        console_oidc_issuer=idp.url,
        console_oidc_client_id=CLIENT_ID,
        console_oidc_role_map="hmc-operators=operator,hmc-integritet=privacy",
    )
    console = console_of(broker)
    console.settings = settings
    console.sso = SingleSignOn(settings, CLIENT_SECRET)
    return client(create_app(console, SECRET))


def sign_in(http: TestClient, tamper_state: bool = False) -> httpx.Response:
    """The browser's round trip: to the IdP, which approves at once, and back with the code."""
    to_idp = http.get("/login/oidc")
    assert to_idp.status_code == 302, to_idp.text
    back = httpx.get(to_idp.headers["location"], follow_redirects=False)
    assert back.status_code == 302, back.text
    location = back.headers["location"]
    if tamper_state:
        location = location.replace("state=", "state=x")
    return http.get(location)


def test_an_identity_from_the_idp_logs_in_with_the_roles_its_claims_map_to(
    broker: Broker, idp: FakeIdp, http: TestClient
) -> None:
    assert 'href="/login/oidc"' in http.get("/login").text
    idp.next_claims = {"sub": "s-1", "preferred_username": "SE2321000016-1234", "roles": ["hmc-operators", "x"]}
    answer = sign_in(http)
    assert answer.status_code == 303 and answer.headers["location"] == "/flow"
    assert "samesite=lax" in answer.headers["set-cookie"].lower()
    assert http.get("/flow").status_code == 200
    (request,) = idp.token_requests
    assert request["code_verifier"] and request["grant_type"] == "authorization_code"
    with broker.sessions() as session:
        account = session.get(AccountRow, "SE2321000016-1234")
        assert account is not None and (account.kind, account.roles) == ("sso", ["operator"])
        login = session.scalars(select(AuditRow).where(AuditRow.action == "login")).one()
    assert login.actor == "SE2321000016-1234" and login.details["via"] == "oidc"


def test_an_identity_whose_claims_give_no_console_role_is_refused(
    broker: Broker, idp: FakeIdp, http: TestClient
) -> None:
    idp.next_claims = {"sub": "s-2", "preferred_username": "someone", "roles": ["hmc-cafeteria"]}
    answer = sign_in(http)
    assert answer.status_code == 401 and "no role in this console" in answer.text
    assert http.get("/flow").status_code == 303


def test_a_tampered_state_is_refused(idp: FakeIdp, http: TestClient) -> None:
    idp.next_claims = {"sub": "s-3", "preferred_username": "olle", "roles": ["hmc-operators"]}
    answer = sign_in(http, tamper_state=True)
    assert answer.status_code == 401 and "identity provider" in answer.text


def test_a_disabled_single_sign_on_account_is_refused(broker: Broker, idp: FakeIdp, http: TestClient) -> None:
    idp.next_claims = {"sub": "s-4", "preferred_username": "olle", "roles": ["hmc-operators"]}
    assert sign_in(http).status_code == 303
    with broker.sessions() as session:
        session.execute(update(AccountRow).values(disabled=True))
        session.commit()
    assert http.get("/flow").status_code == 303  # the session ends at once
    assert sign_in(http).status_code == 401
