"""The console's pure parts: role names, the rule a failure is grouped by, identities' rights, and charts
that show labels as text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from broker.config import ConfigurationError
from broker.store.error_rules import NO_ERROR, stored_rule
from console import charts
from console.accounts import ADMIN, OPERATOR, PRIVACY, ROLES, VIEWER, AccountError, Identity, checked_roles
from console.failures import rule_of
from console.oidc import role_map, roles_of
from console.security import AttemptWindow


@given(st.lists(st.sampled_from([*ROLES, "invoice:1001", "invoice:2040"]), min_size=1))
def test_known_roles_are_accepted_sorted_and_once(roles: list[str]) -> None:
    assert checked_roles(roles) == sorted(set(roles))


@given(st.text(min_size=1).filter(lambda r: r.strip() and r.strip() not in ROLES and "," not in r))
def test_any_other_role_is_refused_by_name(role: str) -> None:
    if role.strip().startswith("invoice:") and role.strip()[8:].isdigit():
        return
    with pytest.raises(AccountError, match="unknown role"):
        checked_roles([role])


def test_no_role_at_all_is_refused() -> None:
    with pytest.raises(AccountError, match="at least one role"):
        checked_roles(["", " "])


@pytest.mark.parametrize(
    ("error", "rule"),
    [
        ("schema.code-list at /CustomerOrder/Priority: Element 'Priority' ...", "schema.code-list"),
        ("personnummer.check-digit at /CustomerOrder/Patient/PatientId: check digit", "personnummer.check-digit"),
        ("publish: unroutable: NO_ROUTE", "publish"),
        ("security.customer-mismatch at -: sent under 1001", "security.customer-mismatch"),
        (None, "(no error)"),
        ("", "(no error)"),
    ],
)
def test_a_failure_is_grouped_by_the_rule_its_error_begins_with(error: str | None, rule: str) -> None:
    assert rule_of(error) == rule


@given(st.text())
def test_a_rule_is_short_and_begins_the_error(error: str) -> None:
    rule = rule_of(error)
    assert len(rule) <= 60
    assert rule == "(no error)" or rule in error[:60]


@given(st.none() | st.text(alphabet=st.sampled_from("ab :t\n"), max_size=150) | st.text(max_size=150))
def test_the_store_keeps_the_rule_beside_the_error_and_null_for_no_error(error: str | None) -> None:
    kept = stored_rule(error)
    assert (kept is None) == (rule_of(error) == NO_ERROR)
    assert kept is None or (kept == rule_of(error) and len(kept) <= 64)  # messages.error_rule is String(64)


def test_roles_give_their_rights_and_admin_gives_all() -> None:
    viewer, operator = Identity("v", frozenset({VIEWER})), Identity("o", frozenset({OPERATOR}))
    admin, nobody = Identity("a", frozenset({ADMIN})), Identity("n", frozenset())
    assert viewer.may(VIEWER) and not viewer.may(OPERATOR) and not viewer.may(PRIVACY)
    assert operator.may(VIEWER) and operator.may(OPERATOR) and not operator.may(PRIVACY)
    assert all(admin.may(r) for r in ROLES) and admin.exports_invoices_of("1001")
    assert not nobody.may(VIEWER)
    assert Identity("e", frozenset({"invoice:1001"})).exports_invoices_of("1001")
    assert not Identity("e", frozenset({"invoice:1001"})).exports_invoices_of("2040")


@given(st.lists(st.tuples(st.text(), st.dictionaries(st.sampled_from(list(charts.COLOURS)), st.integers(0, 10**6)))))
def test_charts_are_well_formed_svg_whatever_the_labels(rows: list[tuple[str, dict[str, int]]]) -> None:
    labels = [label for label, _ in rows]
    for svg in (charts.stacked_bars(rows, "t"), charts.stacked_columns(labels, [c for _, c in rows], "<t>")):
        clean = "".join(ch for ch in svg if ch in "\t\n\r" or ord(ch) >= 0x20)  # XML 1.0 forbids control characters
        root = etree.fromstring(clean.encode("utf-8", "surrogatepass"), etree.XMLParser(recover=False))
        assert root.tag.endswith("svg") and not root.findall(".//{*}script")


def test_role_claims_map_through_the_configured_table() -> None:
    mapping = role_map("hmc-operators=operator, hmc-integritet=privacy")
    assert roles_of({"roles": ["hmc-operators", "hmc-integritet", "other"]}, "roles", mapping) == [
        "operator",
        "privacy",
    ]
    assert roles_of({"groups": "viewer operator nonsense"}, "groups", {}) == ["operator", "viewer"]
    assert roles_of({}, "roles", mapping) == []


@pytest.mark.parametrize("spec", ["hmc-operators", "=operator", "hmc=superuser"])
def test_a_role_map_that_cannot_be_used_is_refused_by_its_setting(spec: str) -> None:
    with pytest.raises(ConfigurationError, match="HMC_CONSOLE_OIDC_ROLE_MAP"):
        role_map(spec)


def test_an_address_with_too_many_failed_logins_waits_out_the_window() -> None:
    now = [0.0]
    window = AttemptWindow(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert not window.blocked("10.0.0.1")
        window.failed("10.0.0.1")
    assert window.blocked("10.0.0.1") and not window.blocked("10.0.0.2")
    now[0] = 61.0
    assert not window.blocked("10.0.0.1")
