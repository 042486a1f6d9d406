"""The operator console's pages and API on the real store (SQLite and PostgreSQL): every operation, who may
do it, the session, CSRF and throttling rules, and that message fields are shown as text."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from markupsafe import escape
from sqlalchemy import select, update

from broker.envelope import Delivery
from broker.model.codes import Side
from broker.store.tables import AccountRow, AuditRow, MessageRow
from console.accounts import THROTTLE_AFTER
from console.security import AttemptWindow
from tests.support.console import (
    PASSWORD,
    add_person,
    add_service,
    app_of,
    client,
    csrf_of,
    log_in,
    parked,
    session_csrf,
    wait_for_job,
)
from tests.support.fakes import Taken
from tests.support.replaying import FIXTURES, Broker


def audit_rows(broker: Broker, action: str) -> list[AuditRow]:
    with broker.sessions() as session:
        return list(session.scalars(select(AuditRow).where(AuditRow.action == action).order_by(AuditRow.id)))


# ---------------------------------------------------------------- sessions, CSRF, throttling


def test_without_a_session_pages_redirect_to_the_login_and_the_api_answers_401(broker: Broker) -> None:
    http = client(app_of(broker))
    for path in ("/flow", "/messages", "/failures", "/jobs", "/audit", "/messages/1"):
        answer = http.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path
    for path in ("/api/v1/flow", "/api/v1/messages", "/api/v1/failures", "/api/v1/jobs", "/api/v1/audit"):
        assert http.get(path).status_code == 401, path
    assert http.post("/api/v1/replays", json={"ids": [1], "reason": "x"}).status_code == 401


def test_a_login_sets_a_secure_httponly_samesite_cookie_and_is_audited(broker: Broker) -> None:
    add_person(broker, "anna", "viewer")
    http = client(app_of(broker))
    answer = log_in(http, "anna")
    assert answer.status_code == 303 and answer.headers["location"] == "/flow"
    cookie = answer.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert http.get("/flow").status_code == 200
    (row,) = audit_rows(broker, "login")
    assert row.actor == "anna" and row.os_user == "console"


def test_every_page_sends_a_strict_content_security_policy(broker: Broker) -> None:
    http = client(app_of(broker))
    csp = http.get("/login").headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp and "frame-ancestors 'none'" in csp


def test_a_login_without_the_csrf_token_is_refused(broker: Broker) -> None:
    add_person(broker, "anna", "viewer")
    http = client(app_of(broker))
    http.get("/login")
    answer = http.post("/login", data={"name": "anna", "password": PASSWORD})
    assert answer.status_code == 403


def test_a_state_change_without_the_csrf_token_is_refused_on_pages_and_api(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    page = http.post(f"/messages/{pk}/replay", data={"reason": "ticket 1", "action": "preview"})
    assert page.status_code == 403
    api = http.post("/api/v1/replays/preview", json={"ids": [pk], "reason": "ticket 1"})
    assert api.status_code == 403
    token = session_csrf(http)
    wrong = http.post("/api/v1/replays/preview", json={"ids": [pk], "reason": "t"}, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    ok = http.post("/api/v1/replays/preview", json={"ids": [pk], "reason": "t"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200


def test_logins_are_throttled_after_repeated_failures_even_with_the_right_password(broker: Broker) -> None:
    add_person(broker, "anna", "viewer")
    http = client(app_of(broker))
    for _ in range(THROTTLE_AFTER):
        assert log_in(http, "anna", "not the password at all").status_code == 401
    refused = log_in(http, "anna")
    assert refused.status_code == 401 and "too many failed logins" in refused.text
    assert len(audit_rows(broker, "login-refused")) == THROTTLE_AFTER + 1


def test_one_address_guessing_across_accounts_is_refused_for_a_while(broker: Broker) -> None:
    add_person(broker, "anna", "viewer")
    app = app_of(broker)
    app.state.console.attempts = AttemptWindow(limit=3)
    http = client(app)
    for name in ("bo", "cecilia", "david"):
        assert log_in(http, name, "guess guess guess").status_code == 401
    assert log_in(http, "anna").status_code == 429


def test_an_account_unused_for_a_year_is_disabled_at_its_next_login(broker: Broker) -> None:
    add_person(broker, "anna", "viewer")
    with broker.sessions() as session:
        long_ago = datetime.now(UTC) - timedelta(days=400)
        session.execute(update(AccountRow).values(created_at=long_ago, last_used_at=long_ago))
        session.commit()
    http = client(app_of(broker))
    answer = log_in(http, "anna")
    assert answer.status_code == 401 and "unused for too long" in answer.text
    with broker.sessions() as session:
        assert session.get(AccountRow, "anna").disabled  # type: ignore[union-attr]


def test_disabling_an_account_ends_its_session(broker: Broker) -> None:
    add_person(broker, "anna", "viewer")
    http = client(app_of(broker))
    log_in(http, "anna")
    assert http.get("/api/v1/flow").status_code == 200
    with broker.sessions() as session:
        session.execute(update(AccountRow).values(disabled=True))
        session.commit()
    assert http.get("/api/v1/flow").status_code == 401


# ---------------------------------------------------------------- roles


def test_a_viewer_sees_messages_masked_but_cannot_replay_resolve_or_reveal(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "vera", "viewer")
    http = client(app_of(broker))
    log_in(http, "vera")
    token = {"X-CSRF-Token": session_csrf(http)}
    listed = http.get("/api/v1/messages", params={"status": "parked"}).json()
    assert [m["id"] for m in listed["messages"]] == [pk]
    shown = http.get(f"/api/v1/messages/{pk}").json()
    assert shown["revealed"] is False and "19121212" not in (shown["payload"] or "")
    for path, body in (
        ("/api/v1/replays", {"ids": [pk], "reason": "t"}),
        ("/api/v1/replays/preview", {"ids": [pk], "reason": "t"}),
        ("/api/v1/resolve", {"ids": [pk], "reason": "t"}),
        (f"/api/v1/messages/{pk}/reveal", {"reason": "t"}),
        ("/api/v1/messages/search", {"patient": "19121212-1212", "reason": "t"}),
    ):
        assert http.post(path, json=body, headers=token).status_code == 403, path
    page = http.post(f"/messages/{pk}/replay", data={"reason": "t", "action": "replay", "csrf": token["X-CSRF-Token"]})
    assert page.status_code == 403
    assert broker.row(pk).status == "parked"


def test_the_privacy_role_reveals_a_message_with_a_reason_and_it_is_audited(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "pia", "privacy")
    http = client(app_of(broker))
    log_in(http, "pia")
    token = {"X-CSRF-Token": session_csrf(http)}
    assert http.post(f"/api/v1/messages/{pk}/reveal", json={}, headers=token).status_code == 400
    doc = http.post(f"/api/v1/messages/{pk}/reveal", json={"reason": "case 7"}, headers=token).json()
    assert doc["revealed"] is True and doc["message"]["patient"]
    (row,) = audit_rows(broker, "reveal")
    assert (row.actor, row.reason, row.details["messages"]) == ("pia", "case 7", [pk])


def test_a_patient_search_is_a_post_needs_a_reason_and_is_audited(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "pia", "privacy")
    http = client(app_of(broker))
    log_in(http, "pia")
    patient = http.post(f"/api/v1/messages/{pk}/reveal", json={"reason": "r"}, headers=_token(http)).json()
    number = patient["message"]["patient"]
    found = http.post("/api/v1/messages/search", json={"patient": number, "reason": "case 8"}, headers=_token(http))
    assert [m["id"] for m in found.json()["messages"]] == [pk]
    assert audit_rows(broker, "search")[-1].actor == "pia"
    page = http.post("/messages", data={"patient": number, "reason": "case 8", "csrf": session_csrf(http)})
    assert page.status_code == 200 and f"/messages/{pk}" in page.text and number not in page.text


def test_the_privacy_role_reveals_a_page_of_messages_with_a_reason_as_list_reveal_does(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "pia", "privacy")
    add_person(broker, "vera", "viewer")
    http = client(app_of(broker))
    log_in(http, "vera")
    body = {"status": "parked", "reveal": True, "reason": "case 9"}
    assert http.post("/api/v1/messages/search", json=body, headers=_token(http)).status_code == 403
    http = client(app_of(broker))
    log_in(http, "pia")
    shown = http.post(f"/api/v1/messages/{pk}/reveal", json={"reason": "r"}, headers=_token(http)).json()
    page = http.post("/api/v1/messages/search", json=body, headers=_token(http)).json()
    assert page["revealed"] and [m["patient"] for m in page["messages"]] == [shown["message"]["patient"]]
    listed = audit_rows(broker, "reveal")[-1]
    assert (listed.actor, listed.reason, listed.details) == ("pia", "case 9", {"what": "list", "messages": [pk]})


def _token(http: object) -> dict[str, str]:
    return {"X-CSRF-Token": session_csrf(http)}  # type: ignore[arg-type]


# ---------------------------------------------------------------- replay, resolve, jobs, audit


def test_an_operator_previews_and_replays_a_parked_message_through_the_api(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    preview = http.post("/api/v1/replays/preview", json={"ids": [pk], "reason": "INC-1"}, headers=_token(http))
    assert preview.status_code == 200 and preview.json()["outcomes"][0]["status"] == "would-send"
    assert broker.row(pk).status == "parked"
    started = http.post("/api/v1/replays", json={"ids": [pk], "reason": "INC-1", "rate": 0}, headers=_token(http))
    assert started.status_code == 202
    job = wait_for_job(http, started.json()["job"])
    assert (job["status"], job["done"], job["left"]) == ("done", 1, 0)
    assert broker.row(pk).status == "replayed"
    replay = audit_rows(broker, "replay")[-1]
    assert (replay.actor, replay.os_user, replay.reason) == ("olle", "console", "INC-1")
    assert audit_rows(broker, "replay-dry-run")[-1].actor == "olle"


def test_failures_are_grouped_and_a_group_is_replayed_then_listed_as_a_job(broker: Broker) -> None:
    first, second = parked(broker), parked(broker, "0b7e3a52-2f7c-4d0e-9a43-6c1d5f0e8b21")
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    (group,) = http.get("/api/v1/failures").json()["groups"]
    assert (group["status"], group["rule"], group["count"]) == ("parked", "publish", 2)
    key = {k: group[k] for k in ("status", "rule", "type", "customer")}
    preview = http.post("/api/v1/replays/preview", json={**key, "reason": "INC-2"}, headers=_token(http)).json()
    assert preview["count"] == 2
    started = http.post("/api/v1/replays", json={**key, "reason": "INC-2", "rate": 50}, headers=_token(http)).json()
    assert wait_for_job(http, started["job"])["status"] == "done"
    assert {broker.row(first).status, broker.row(second).status} == {"replayed"}
    assert http.get("/api/v1/failures").json()["groups"] == []
    assert "INC-2" in http.get("/jobs").text


def test_an_operator_resolves_a_failure_group_from_the_failures_page(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    page = http.get("/failures").text
    form = {"status": "parked", "rule": "publish", "type": "CustomerOrder", "customer": "1002"}
    answer = http.post("/failures", data={**form, "reason": "sent again by phone", "action": "resolve",
                                          "csrf": csrf_of(page)})  # fmt: skip
    assert answer.status_code == 200 and "was parked" in answer.text
    assert broker.row(pk).status == "resolved"
    assert audit_rows(broker, "resolve")[-1].actor == "olle"


def test_the_replay_form_previews_first_then_starts_a_job(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    page = http.get(f"/messages/{pk}")
    preview = http.post(f"/messages/{pk}/replay", data={"reason": "r", "action": "preview", "csrf": csrf_of(page.text)})
    assert preview.status_code == 200 and "Dry run" in preview.text and "would-send" in preview.text
    start = http.post(f"/messages/{pk}/replay", data={"reason": "r", "action": "replay", "rate": "0",
                                                      "csrf": csrf_of(preview.text)})  # fmt: skip
    assert start.status_code == 303 and start.headers["location"].startswith("/jobs")
    job = int(start.headers["location"].rsplit("=", 1)[1])
    assert wait_for_job(http, job)["status"] == "done"


def test_an_edit_is_checked_before_anything_is_sent_and_needs_privacy(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "olle", "operator")
    add_person(broker, "eva", "operator", "privacy")
    stored = (broker.row(pk).payload or b"").decode()
    http = client(app_of(broker))
    log_in(http, "olle")
    edited = stored.replace("<Quantity>1</Quantity>", "<Quantity>2</Quantity>", 1)
    assert edited != stored
    body = {"ids": [pk], "reason": "r", "payload": edited}
    assert http.post("/api/v1/replays/preview", json=body, headers=_token(http)).status_code == 403
    http = client(app_of(broker))
    log_in(http, "eva")
    rerouted = stored.replace("<CustomerNumber>1002</CustomerNumber>", "<CustomerNumber>1001</CustomerNumber>")
    refused = http.post("/api/v1/replays/preview", json={**body, "payload": rerouted}, headers=_token(http))
    assert refused.status_code == 400 and "CustomerNumber" in refused.json()["detail"]
    preview = http.post("/api/v1/replays/preview", json=body, headers=_token(http)).json()
    assert "<Quantity>2</Quantity>" in preview["diff"]
    started = http.post("/api/v1/replays", json=body, headers=_token(http)).json()
    assert wait_for_job(http, started["job"])["status"] == "done"
    assert audit_rows(broker, "edit")[-1].actor == "eva"
    family = http.get(f"/messages/{pk}").text  # the original shows its edited replay, with the diff
    assert "(edited)" in family and "+      &lt;Quantity&gt;2&lt;/Quantity&gt;" in family


def test_the_audit_page_and_api_filter_by_actor_and_action(broker: Broker) -> None:
    add_person(broker, "anna", "viewer")
    add_person(broker, "bo", "viewer")
    for name in ("anna", "bo"):
        log_in(client(app_of(broker)), name)
    http = client(app_of(broker))
    log_in(http, "anna")
    entries = http.get("/api/v1/audit", params={"actor": "bo", "action": "login"}).json()["entries"]
    assert [e["actor"] for e in entries] == ["bo"]
    page = http.get("/audit", params={"actor": "bo"}).text
    assert "<td>bo</td>" in page and "<td>anna</td>" not in page


# ---------------------------------------------------------------- service accounts


def test_a_service_account_uses_its_bearer_token_within_its_roles(broker: Broker) -> None:
    pk = parked(broker)
    reader = add_service(broker, "grafana", "viewer")
    robot = add_service(broker, "runbook", "operator")
    http = client(app_of(broker))
    assert http.get("/api/v1/failures", headers={"Authorization": "Bearer nonsense"}).status_code == 401
    assert http.get("/api/v1/failures", headers={"Authorization": f"Bearer {reader}"}).status_code == 200
    denied = http.post(
        "/api/v1/replays", json={"ids": [pk], "reason": "r"}, headers={"Authorization": f"Bearer {reader}"}
    )
    assert denied.status_code == 403
    auth = {"Authorization": f"Bearer {robot}"}
    started = http.post("/api/v1/replays", json={"ids": [pk], "reason": "auto", "rate": 0}, headers=auth)
    assert started.status_code == 202
    assert wait_for_job(http, started.json()["job"], headers=auth)["status"] == "done"
    assert audit_rows(broker, "replay")[-1].actor == "runbook"
    assert http.get("/flow", headers=auth).status_code == 303  # a token is for the API, not the pages


def test_an_integrator_downloads_the_contract_and_its_bundle_with_any_role(broker: Broker) -> None:
    """#19's bundle "from the console if present": a viewer's token gets the AsyncAPI document and the zip that
    `hmc-broker contract --bundle` writes; without a token, nothing."""
    import io
    import zipfile

    reader = add_service(broker, "integrator", "viewer")
    http = client(app_of(broker))
    assert http.get("/api/v1/contract/bundle").status_code == 401
    auth = {"Authorization": f"Bearer {reader}"}
    document = http.get("/api/v1/contract", headers=auth)
    assert document.status_code == 200 and document.json()["asyncapi"].startswith("3.")
    got = http.get("/api/v1/contract/bundle", headers=auth)
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert "attachment" in got.headers["content-disposition"]
    names = zipfile.ZipFile(io.BytesIO(got.content)).namelist()
    top = names[0].split("/")[0]
    assert {f"{top}/manifest.json", f"{top}/asyncapi.yaml", f"{top}/customer/v1/customer-1.0.xsd"} <= set(names)


# ---------------------------------------------------------------- pages show text


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", "'; DROP TABLE messages;--", '"><img src=x>'])
def test_injection_strings_in_message_fields_render_as_text(broker: Broker, text: str) -> None:
    hostile = Delivery(
        side=Side.CUSTOMER,
        body=f"<Note>{text.replace('<', '&lt;').replace('>', '&gt;')}</Note>".encode(),
        routing_key="1002.CustomerOrder",
        message_id=text[:60],
        correlation_id=text[:60],
        headers={"x-note": text},
    )
    broker.worker.process([Taken(hostile)])
    with broker.sessions() as session:
        pk = session.scalars(select(MessageRow.id).order_by(MessageRow.id.desc()).limit(1)).one()
    add_person(broker, "anna", "viewer")
    http = client(app_of(broker))
    log_in(http, "anna")
    for path in (f"/messages/{pk}", "/messages", "/failures"):
        page = http.get(path).text
        assert "<script>" not in page and "<img" not in page, path
    assert str(escape(text[:60])) in http.get(f"/messages/{pk}").text  # shown, as text


def test_the_flow_page_draws_its_charts_as_inline_svg(broker: Broker) -> None:
    parked(broker)
    add_person(broker, "anna", "viewer")
    http = client(app_of(broker))
    log_in(http, "anna")
    for window in ("hour", "day", "week"):
        page = http.get("/flow", params={"window": window})
        assert page.status_code == 200 and page.text.count("<svg") >= 2, window
    data = http.get("/api/v1/flow", params={"window": "hour"}).json()
    assert data["backlog"]["parked"] == 1 and sum(sum(s["counts"].values()) for s in data["per_slot"]) >= 1
    assert http.get("/api/v1/flow", params={"window": "year"}).status_code == 400


# ---------------------------------------------------------------- exports

INVOICE = Path(__file__).resolve().parents[1] / "fixtures/sesam2/valid/InvoiceData-2026-10.xml"


def test_invoice_data_downloads_only_for_the_customers_role_and_each_try_is_audited(broker: Broker) -> None:
    delivery = Delivery(side=Side.SESAM2, body=INVOICE.read_bytes(), routing_key="InvoiceData")
    broker.worker.process([Taken(delivery)])
    add_person(broker, "ekonom.skane", "invoice:1001")
    add_person(broker, "ekonom.halland", "invoice:1002")
    http = client(app_of(broker))
    log_in(http, "ekonom.skane")
    assert "1001" in http.get("/exports").text
    got = http.post("/exports/invoice", data={"customer": "1001", "month": "2026-10", "format": "csv",
                                              "csrf": session_csrf(http)})  # fmt: skip
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert 'filename="fakturaunderlag-1001-2026-10.csv"' in got.headers["content-disposition"]
    assert audit_rows(broker, "invoice-export")[-1].actor == "ekonom.skane"
    http = client(app_of(broker))
    log_in(http, "ekonom.halland")
    body = {"customer": "1001", "month": "2026-10", "format": "xlsx"}
    assert http.post("/api/v1/exports/invoice", json=body, headers=_token(http)).status_code == 403
    assert audit_rows(broker, "invoice-export-refused")[-1].actor == "ekonom.halland"


def test_a_grant_or_revoke_of_the_invoice_role_holds_in_the_console_at_the_next_request(broker: Broker) -> None:
    """The accounts' roles are the one source of who may export (the CLI checks the same, see
    tests/store/test_invoice_export.py): `hmc-broker users roles` changes them for a logged-in session too."""
    from console.accounts import set_roles

    broker.worker.process([Taken(Delivery(side=Side.SESAM2, body=INVOICE.read_bytes(), routing_key="InvoiceData"))])
    add_person(broker, "bo", "operator")
    http = client(app_of(broker))
    log_in(http, "bo")
    body = {"customer": "1001", "month": "2026-10", "format": "csv"}

    def download() -> int:
        return int(http.post("/api/v1/exports/invoice", json=body, headers=_token(http)).status_code)

    def roles(*given: str) -> None:
        with broker.sessions() as session:
            set_roles(session, "bo", given)
            session.commit()

    assert download() == 403
    roles("operator", "invoice:1001")
    assert download() == 200
    roles("operator")
    assert download() == 403
    refusal = audit_rows(broker, "invoice-export-refused")[-1]
    assert refusal.actor == "bo" and "the role invoice:1001 is needed" in refusal.details["refusal"]


def test_the_prescriber_register_downloads_for_the_privacy_role_only(broker: Broker) -> None:
    add_person(broker, "vera", "viewer")
    add_person(broker, "pia", "privacy")
    http = client(app_of(broker))
    log_in(http, "vera")
    assert http.post("/api/v1/exports/prescribers", json={"customer": "1001"}, headers=_token(http)).status_code == 403
    http = client(app_of(broker))
    log_in(http, "pia")
    got = http.post("/api/v1/exports/prescribers", json={"customer": "1001"}, headers=_token(http))
    assert got.status_code == 200 and got.content[:2] == b"PK"  # an xlsx is a zip
    assert audit_rows(broker, "register-export")[-1].actor == "pia"


# ---------------------------------------------------------------- selections by filter, message exports


def test_a_replay_selects_by_filter_as_the_cli_does(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    body = {"filter": {"status": "parked", "type": "CustomerOrder"}, "reason": "INC-9", "rate": 0}
    assert http.post("/api/v1/replays/preview", json=body, headers=_token(http)).json()["count"] == 1
    everything = http.post("/api/v1/replays/preview", json={"filter": {}, "reason": "r"}, headers=_token(http))
    assert everything.status_code == 400 and "all messages is not a selection" in everything.json()["detail"]
    started = http.post("/api/v1/replays", json=body, headers=_token(http)).json()
    assert wait_for_job(http, started["job"])["status"] == "done" and broker.row(pk).status == "replayed"


def test_the_messages_page_replays_what_its_filter_matches_after_a_dry_run(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    page = http.get("/messages", params={"status": "parked"}).text
    assert 'name="f.status" value="parked"' in page
    form = {"f.status": "parked", "reason": "INC-10", "csrf": csrf_of(page)}
    preview = http.post("/messages/act", data={**form, "action": "preview"})
    assert preview.status_code == 200 and "would-send" in preview.text and 'action="/messages/act"' in preview.text
    start = http.post("/messages/act", data={**form, "action": "replay", "rate": "0", "csrf": csrf_of(preview.text)})
    assert start.status_code == 303
    assert wait_for_job(http, int(start.headers["location"].rsplit("=", 1)[1]))["status"] == "done"
    assert broker.row(pk).status == "replayed"


def test_messages_export_as_json_lines_masked_or_revealed_with_privacy(broker: Broker) -> None:
    pk = parked(broker)
    add_person(broker, "olle", "operator")
    add_person(broker, "eva", "operator", "privacy")
    http = client(app_of(broker))
    log_in(http, "olle")
    body = {"ids": [pk], "reason": "case 12"}
    masked = http.post("/api/v1/messages/export", json=body, headers=_token(http))
    assert masked.status_code == 200 and masked.headers["content-type"].startswith("application/x-ndjson")
    (line,) = [json.loads(x) for x in masked.text.splitlines()]
    assert line["id"] == pk and line["patient"] == broker.row(pk).patient_ref  # the stored token, not the number
    assert http.post("/api/v1/messages/export", json={**body, "reveal": True}, headers=_token(http)).status_code == 403
    http = client(app_of(broker))
    log_in(http, "eva")
    revealed = http.post("/api/v1/messages/export", json={**body, "reveal": True}, headers=_token(http))
    (clear,) = [json.loads(x) for x in revealed.text.splitlines()]
    assert clear["patient"] and clear["patient"] != line["patient"]
    exports = audit_rows(broker, "export")
    assert [(e.actor, e.details["revealed"]) for e in exports] == [("olle", False), ("eva", True)]


# ---------------------------------------------------------------- the row-id filter


def test_the_messages_page_and_api_filter_by_row_ids_as_messages_list_id_does(broker: Broker) -> None:
    first, second = parked(broker), parked(broker, "0b7e3a52-2f7c-4d0e-9a43-6c1d5f0e8b21")
    third = parked(broker, "5c2d9e41-7a3b-4f6e-8d10-2b9c4e7f1a63")
    add_person(broker, "vera", "viewer")
    http = client(app_of(broker))
    log_in(http, "vera")
    listed = http.get("/api/v1/messages", params={"ids": f"{first}, #{third}"}).json()
    assert [m["id"] for m in listed["messages"]] == [third, first]
    narrowed = http.get("/api/v1/messages", params={"ids": f"{first},{second}", "status": "resolved"}).json()
    assert narrowed["messages"] == []  # the ids are one more criterion, with the others
    searched = http.post("/api/v1/messages/search", json={"ids": str(second)}, headers=_token(http)).json()
    assert [m["id"] for m in searched["messages"]] == [second]
    refused = http.get("/api/v1/messages", params={"ids": "12,abc"})
    assert refused.status_code == 400 and "not a row id" in refused.json()["detail"]
    page = http.get("/messages", params={"ids": f"#{second}"}).text
    assert f'href="/messages/{second}"' in page and f'href="/messages/{first}"' not in page
    assert f'name="ids" value="#{second}"' in page  # the form keeps what was typed


def test_a_selection_by_filter_takes_row_ids_too(broker: Broker) -> None:
    first, second = parked(broker), parked(broker, "0b7e3a52-2f7c-4d0e-9a43-6c1d5f0e8b21")
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    body = {"filter": {"ids": f"#{second}", "status": "parked"}, "reason": "INC-11"}
    preview = http.post("/api/v1/replays/preview", json=body, headers=_token(http)).json()
    assert preview["count"] == 1 and [o["source"] for o in preview["outcomes"]] == [second]
    assert broker.row(first).status == "parked"


# ---------------------------------------------------------------- failure groups from the store


def _rejected(broker: Broker) -> int:
    body = (FIXTURES / "customer" / "invalid" / "CustomerOrder-article-number-format.xml").read_bytes()
    row = broker.receive(body)
    assert row.status == "rejected"
    return row.id


def test_every_failure_keeps_the_rule_of_its_error_beside_it(broker: Broker) -> None:
    from broker.store.error_rules import stored_rule

    parked_pk, rejected_pk = parked(broker), _rejected(broker)  # parked by the relay (ORM), rejected (an insert)
    for pk in (parked_pk, rejected_pk):
        row = broker.row(pk)
        assert row.error_rule is not None and row.error_rule == stored_rule(row.last_error)
    assert broker.row(parked_pk).error_rule == "publish"
    with broker.sessions() as session:
        row = session.get(MessageRow, parked_pk)
        assert row is not None
        row.last_error = "security.customer-mismatch at -: sent under 1001"  # any write of the error, by the ORM
        session.commit()
    assert broker.row(parked_pk).error_rule == "security.customer-mismatch"


def test_failures_are_split_by_type_and_customer_as_asked_and_paged(broker: Broker) -> None:
    first, second = parked(broker), parked(broker, "0b7e3a52-2f7c-4d0e-9a43-6c1d5f0e8b21")
    rejected = _rejected(broker)
    with broker.sessions() as session:
        session.execute(update(MessageRow).where(MessageRow.id == second).values(customer_number="1001"))
        session.commit()
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    full = http.get("/api/v1/failures").json()
    assert (full["total_groups"], full["total_messages"], full["by"]) == (3, 3, ["type", "customer"])
    by_rule = http.get("/api/v1/failures", params={"by": "rule"}).json()
    publish = next(g for g in by_rule["groups"] if g["rule"] == "publish")
    assert publish == {**publish, "count": 2} and "customer" not in publish and "type" not in publish
    assert by_rule["total_groups"] == 2
    paged = http.get("/api/v1/failures", params={"by": "rule", "limit": 1}).json()
    assert [g["rule"] for g in paged["groups"]] == ["publish"] and paged["next_offset"] == 1
    assert (paged["more_groups"], paged["more_messages"]) == (1, 1)
    rest = http.get("/api/v1/failures", params={"by": "rule", "limit": 1, "offset": 1}).json()
    assert rest["next_offset"] is None and len(rest["groups"]) == 1 and rest["groups"][0]["rule"] != "publish"
    assert http.get("/api/v1/failures", params={"by": "colour"}).status_code == 400
    # A group by rule alone is the whole rule, whatever the customers: a dry run, then resolving it.
    key = {"status": "parked", "rule": "publish"}
    preview = http.post("/api/v1/replays/preview", json={**key, "reason": "INC-12"}, headers=_token(http)).json()
    assert preview["count"] == 2
    resolved = http.post("/api/v1/resolve", json={**key, "reason": "INC-12"}, headers=_token(http)).json()
    assert sorted(int(k) for k in resolved["resolved"]) == sorted([first, second])
    assert broker.row(rejected).status == "rejected"
    page = http.get("/failures", params={"by": "customer"}).text
    assert "<th>customer</th>" in page and "<th>type</th>" not in page and "1 parked and rejected" in page


# ---------------------------------------------------------------- health (the compose health check)


def test_health_and_readiness_answer_without_a_login_and_say_nothing_more(broker: Broker) -> None:
    http = client(app_of(broker))
    for path, status in (("/healthz", "ok"), ("/readyz", "ready")):
        answer = http.get(path)
        assert answer.status_code == 200 and answer.json() == {"status": status}, path
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")


def test_readiness_fails_while_the_store_does_not_answer(broker: Broker) -> None:
    from broker.store.db import make_engine, sessions

    app = app_of(broker)
    # A port nothing listens on: the store "is down"; the console itself still serves.
    app.state.console.sessions = sessions(make_engine("postgresql+psycopg://hmc@127.0.0.1:9/hmc?connect_timeout=2"))
    http = client(app)
    assert http.get("/healthz").status_code == 200
    down = http.get("/readyz")
    assert down.status_code == 503 and down.json() == {"status": "unavailable"}


def test_a_dry_run_of_a_large_selection_runs_a_bounded_sample_and_says_so(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console import replays

    monkeypatch.setattr(replays, "PREVIEWED", 1)
    first, second = parked(broker), parked(broker, "0b7e3a52-2f7c-4d0e-9a43-6c1d5f0e8b21")
    add_person(broker, "olle", "operator")
    http = client(app_of(broker))
    log_in(http, "olle")
    key = {"status": "parked", "rule": "publish", "reason": "INC-13"}
    preview = http.post("/api/v1/replays/preview", json=key, headers=_token(http)).json()
    assert (preview["count"], preview["previewed"]) == (2, 1)
    assert [o["source"] for o in preview["outcomes"]] == [first]
    dry = audit_rows(broker, "replay-dry-run")[-1]
    assert (dry.details["count"], dry.details["selected"]) == (1, 2)
    page = http.post("/failures", data={**key, "action": "preview", "csrf": session_csrf(http)}).text
    assert "the first 1 of them" in page and "Replay 2 message(s)" in page
    assert {broker.row(first).status, broker.row(second).status} == {"parked"}
