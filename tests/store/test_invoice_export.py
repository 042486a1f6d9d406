"""Invoice data: kept from SESAM2's InvoiceData, exported as xlsx/CSV only by those allowed, always audited."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from adapters.exports.sheets import invoice_tables
from adapters.exports.spreadsheet import csv_bytes, decimal_comma
from broker.bootstrap import store as open_store
from broker.cli import app
from broker.config import Settings
from broker.contract.dialect import DIALECTS, read
from broker.envelope import Delivery
from broker.model import messages as m
from broker.model.codes import BillingForm, Side
from broker.pipeline import Pipeline
from broker.store.tables import AccountRow, AuditRow, InvoiceRow, OutboxRow
from broker.store.unit_of_work import UnitOfWork
from console.accounts import add_person, disable
from tests.support.fixtures import Store

PASSWORD = "a long enough password"
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures/sesam2/valid/InvoiceData-2026-10.xml"
SESAM2 = DIALECTS[Side.SESAM2]
Run = Callable[..., tuple[int, str]]


@pytest.fixture
def env(store: Store) -> dict[str, str]:
    return {
        "HMC_DB_URL": store.url,
        "HMC_CUSTOMERS": "1001:Region Skåne:websesam-skane:invoice,1002:Region Halland",
    }


@pytest.fixture
def sessions(env: dict[str, str]) -> sessionmaker[Session]:
    """The store, with the accounts that may or may not export (the same accounts as the console's):
    anna.andersson holds invoice:1001 and invoice:1002, bo.berg is an operator only, carl.c's account is
    disabled."""
    made = open_store(Settings.from_env(env))
    with made() as session:
        add_person(session, "anna.andersson", PASSWORD, ["invoice:1001", "invoice:1002"])
        add_person(session, "bo.berg", PASSWORD, ["operator"])
        add_person(session, "carl.c", PASSWORD, ["invoice:1001"])
        disable(session, "carl.c")
        session.commit()
    return made


@pytest.fixture
def hmc(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)

    def run(*args: str, **extra: str) -> tuple[int, str]:
        result = CliRunner().invoke(app, list(args), env={**env, **extra}, catch_exceptions=False)
        return result.exit_code, result.output

    return run


def invoice() -> m.InvoiceData:
    message = read(FIXTURE.read_bytes()).message
    assert isinstance(message, m.InvoiceData)
    return message


def receive(sessions: sessionmaker[Session], env: dict[str, str], message: m.InvoiceData) -> None:
    delivery = Delivery(
        side=Side.SESAM2,
        body=SESAM2.render(message),
        routing_key="InvoiceData",
        message_id=message.header.message_id,
        message_type="InvoiceData",
    )
    with UnitOfWork(sessions) as uow:
        Pipeline(Settings.from_env(env)).handle([delivery], uow)
        uow.commit()


def audit_rows(sessions: sessionmaker[Session]) -> list[AuditRow]:
    with sessions() as session:
        return list(session.scalars(select(AuditRow).order_by(AuditRow.id)))


def test_invoice_data_is_kept_and_routed_to_hmc_invoice(sessions: sessionmaker[Session], env: dict[str, str]) -> None:
    sent = invoice()
    receive(sessions, env, sent)
    with sessions() as session:
        (kept,) = session.scalars(select(InvoiceRow)).all()
        (out,) = session.scalars(select(OutboxRow)).all()
    assert (kept.customer_number, kept.period, Decimal(kept.total_amount)) == ("1001", "2026-10", sent.total_amount)
    assert len(kept.lines) == len(sent.lines) and "patient" not in str(kept.lines).lower()
    assert (out.exchange, out.routing_key) == ("invoice", "1001")


def test_the_xlsx_opens_with_openpyxl_and_its_totals_equal_the_message(
    sessions: sessionmaker[Session], env: dict[str, str], hmc: Run, tmp_path: Path
) -> None:
    sent = invoice()
    receive(sessions, env, sent)
    code, output = hmc("invoice", "export", "--customer", "1001", "--month", "2026-10", "--operator", "anna.andersson")
    assert code == 0, output
    path = tmp_path / "fakturaunderlag-1001-2026-10.xlsx"
    book = load_workbook(path)
    assert book.sheetnames == ["Fakturarader", "Summa per artikel", "Summa per debiteringsform", "Summa"]
    detail = list(book["Fakturarader"].iter_rows(min_row=2, values_only=True))
    assert len(detail) == len(sent.lines)
    amounts = [Decimal(str(row[9])) for row in detail]
    assert sum(amounts) == sent.total_amount == sum(line.amount for line in sent.lines)
    assert isinstance(detail[0][7], int) and isinstance(detail[0][9], int | float)  # numbers, not text
    assert book["Fakturarader"].cell(row=2, column=10).number_format == "#,##0.00"
    per_article = list(book["Summa per artikel"].iter_rows(min_row=2, values_only=True))
    per_form = list(book["Summa per debiteringsform"].iter_rows(min_row=2, values_only=True))
    assert sum(Decimal(str(r[3])) for r in per_article) == sent.total_amount
    assert sum(Decimal(str(r[2])) for r in per_form) == sent.total_amount
    assert {r[0] for r in per_form} <= {"Hyra", "Försäljning med återtagande", "Försäljning"}
    (row,) = audit_rows(sessions)
    assert (row.action, row.actor) == ("invoice-export", "anna.andersson")
    assert row.details["rows"] == len(sent.lines) and row.details["format"] == "xlsx"
    assert row.details["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_csv_is_what_excel_reads_in_sweden(
    sessions: sessionmaker[Session], env: dict[str, str], hmc: Run, tmp_path: Path
) -> None:
    sent = invoice()
    receive(sessions, env, sent)
    out = tmp_path / "out" / "oktober.csv"
    code, output = hmc(
        "invoice", "export", "-c", "1001", "-m", "2026-10", "--operator", "anna.andersson", "-f", "csv", "-o", str(out)
    )
    assert code == 0, output
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][0] == "Fakturanummer" and rows[0][9] == "Belopp"
    detail = rows[1 : 1 + len(sent.lines)]
    assert sum(Decimal(r[9].replace(",", ".")) for r in detail) == sent.total_amount
    assert all("," in r[9] and "." not in r[9] for r in detail)
    assert detail[0][10] == sent.lines[0].delivered_on.isoformat()  # type: ignore[union-attr]
    assert ["Summa per artikel"] in rows and ["Summa per debiteringsform"] in rows


@pytest.mark.parametrize(
    ("customer", "operator", "why"),
    [
        ("1001", "mallory", "mallory may not export invoice data of customer 1001: no enabled account mallory"),
        ("1001", "bo.berg", "bo.berg may not export invoice data of customer 1001: the role invoice:1001 is needed"),
        ("1001", "carl.c", "carl.c may not export invoice data of customer 1001: no enabled account carl.c"),
        ("1002", "anna.andersson", "customer 1002 has no invoice permission"),
        ("9999", "anna.andersson", "customer 9999 is not configured"),
    ],
)
def test_an_export_without_permission_is_refused_writes_nothing_and_is_audited(
    sessions: sessionmaker[Session],
    env: dict[str, str],
    hmc: Run,
    tmp_path: Path,
    customer: str,
    operator: str,
    why: str,
) -> None:
    sent = invoice()
    receive(sessions, env, sent)
    other = dataclasses.replace(sent.header, customer_number="1002", message_id="0b7a5d9e-4f55-4f0e-9c43-2f1b8a6d7e10")
    receive(sessions, env, dataclasses.replace(sent, header=other))  # 1002's data is kept, not exportable
    before = set(tmp_path.iterdir())
    code, output = hmc("invoice", "export", "--customer", customer, "--month", "2026-10", "--operator", operator)
    assert code == 2 and why in output and "nothing was written" in output
    assert set(tmp_path.iterdir()) == before
    (row,) = audit_rows(sessions)
    assert (row.action, row.actor, row.details["customer"]) == ("invoice-export-refused", operator, customer)
    assert why in row.details["refusal"]


def test_without_operator_the_os_user_s_account_is_the_one_checked(
    sessions: sessionmaker[Session], env: dict[str, str], hmc: Run
) -> None:
    receive(sessions, env, invoice())
    code, output = hmc("invoice", "export", "-c", "1001", "-m", "2026-10", LOGNAME="bo.berg")
    assert code == 2 and "bo.berg may not export" in output
    code, output = hmc("invoice", "export", "-c", "1001", "-m", "2026-10", LOGNAME="anna.andersson")
    assert code == 0, output
    assert [(r.action, r.actor, r.os_user) for r in audit_rows(sessions)] == [
        ("invoice-export-refused", "bo.berg", "bo.berg"),
        ("invoice-export", "anna.andersson", "anna.andersson"),
    ]


def test_a_granted_role_works_at_once_and_a_revoked_one_refuses(
    sessions: sessionmaker[Session], env: dict[str, str], hmc: Run
) -> None:
    """`hmc-broker users roles` is the one place a grant changes, for the CLI as for the console."""
    receive(sessions, env, invoice())
    export = ("invoice", "export", "-c", "1001", "-m", "2026-10", "--operator", "bo.berg")
    assert hmc(*export)[0] == 2
    code, output = hmc("users", "roles", "bo.berg", "--role", "operator,invoice:1001")
    assert code == 0, output
    assert hmc(*export)[0] == 0
    assert hmc("users", "roles", "bo.berg", "--role", "operator")[0] == 0
    assert hmc(*export)[0] == 2
    grants = [r.details for r in audit_rows(sessions) if r.action == "account"]
    assert grants[0] == {"op": "roles", "account": "bo.berg", "before": ["operator"],
                         "roles": ["invoice:1001", "operator"]}  # fmt: skip


def test_an_account_unused_for_the_period_may_not_export_and_is_disabled_as_at_a_console_login(
    sessions: sessionmaker[Session], env: dict[str, str], hmc: Run
) -> None:
    """The CLI's --operator reads the console's rule (broker/store/accounts.py): a year unused, no export."""
    receive(sessions, env, invoice())
    with sessions() as session:
        long_ago = datetime.now(UTC) - timedelta(days=366)
        session.execute(update(AccountRow).where(AccountRow.name == "anna.andersson").values(created_at=long_ago))
        session.commit()
    code, output = hmc("invoice", "export", "-c", "1001", "-m", "2026-10", "--operator", "anna.andersson")
    assert code == 2 and "no enabled account anna.andersson" in output and "users passwd" in output
    (row,) = audit_rows(sessions)
    assert (row.action, row.actor) == ("invoice-export-refused", "anna.andersson")
    with sessions() as session:
        assert session.get(AccountRow, "anna.andersson").disabled  # type: ignore[union-attr]
    assert (
        hmc(
            "invoice",
            "export",
            "-c",
            "1001",
            "-m",
            "2026-10",
            "--operator",
            "anna.andersson",
            HMC_CONSOLE_DORMANT_DAYS="500",
        )[0]
        == 2
    )  # disabled now, whatever the period


def test_no_data_for_the_month_or_a_bad_month_is_refused(hmc: Run, sessions: sessionmaker[Session]) -> None:
    code, output = hmc("invoice", "export", "-c", "1001", "-m", "2026-09", "--operator", "anna.andersson")
    assert code == 2 and "no invoice data for customer 1001 and 2026-09" in output
    code, output = hmc("invoice", "export", "-c", "1001", "-m", "sept", "--operator", "anna.andersson")
    assert code == 2 and "expected YYYY-MM" in output
    assert [r.action for r in audit_rows(sessions)] == ["invoice-export-refused"] * 2


def test_of_several_for_one_month_the_latest_is_exported(
    sessions: sessionmaker[Session], env: dict[str, str], hmc: Run, tmp_path: Path
) -> None:
    first = invoice()
    receive(sessions, env, first)
    header = dataclasses.replace(first.header, message_id="5b7a5d9e-4f55-4f0e-9c43-2f1b8a6d7e10")
    line = dataclasses.replace(first.lines[0], quantity=2, amount=first.lines[0].unit_price * 2)
    corrected = dataclasses.replace(
        first,
        header=header,
        invoice_number="FU-1001-202610-K",
        lines=[line],
        total_amount=line.amount,
    )
    receive(sessions, env, corrected)
    code, output = hmc("invoice", "export", "-c", "1001", "-m", "2026-10", "--operator", "anna.andersson")
    assert code == 0 and "the latest of 2" in output
    sheet = load_workbook(tmp_path / "fakturaunderlag-1001-2026-10.xlsx")["Fakturarader"]
    assert [r[0] for r in sheet.iter_rows(min_row=2, values_only=True)] == ["FU-1001-202610-K"]


# ---------------------------------------------------------------- the writer's conventions


@given(st.decimals(min_value=-(10**9), max_value=10**9, places=2, allow_nan=False, allow_infinity=False))
def test_decimal_comma_round_trips_exactly(value: Decimal) -> None:
    text = decimal_comma(value)
    assert "." not in text and "e" not in text.lower() and " " not in text
    assert Decimal(text.replace(",", ".")) == value


amounts = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)


@given(
    st.lists(
        st.tuples(st.sampled_from(["120606", "093303", "122203"]), st.sampled_from(list(BillingForm)), amounts),
        min_size=1,
        max_size=20,
    )
)
def test_totals_per_article_and_billing_form_equal_the_sum_of_lines(
    lines: list[tuple[str, BillingForm, Decimal]],
) -> None:
    row = InvoiceRow(
        customer_number="1001",
        period="2026-10",
        invoice_number="FU-1",
        total_amount=str(sum((a for _, _, a in lines), Decimal(0))),
        lines=[
            {
                "order_id": "WS-1",
                "sesam2_order_number": "4100229310",
                "article_number": article,
                "article_name": f"Artikel {article}",
                "billing_form": form.value,
                "quantity": 1,
                "unit_price": str(amount),
                "amount": str(amount),
                "delivered_on": date(2026, 10, 1).isoformat(),
            }
            for article, form, amount in lines
        ],
    )
    detail, per_article, per_form, summary = invoice_tables(row)
    total = sum((a for _, _, a in lines), Decimal(0))
    assert sum(r[3] for r in per_article.rows) == total == sum(r[2] for r in per_form.rows)  # type: ignore[misc]
    assert len(detail.rows) == len(lines) and ("Stämmer", "ja") in summary.rows
    text = csv_bytes([per_form]).decode("utf-8-sig")
    assert sum(Decimal(r[2].replace(",", ".")) for r in list(csv.reader(io.StringIO(text), delimiter=";"))[1:]) == total


def test_a_credit_line_and_a_rental_period_are_exported_with_their_own_columns(
    sessions: sessionmaker[Session], env: dict[str, str], hmc: Run, tmp_path: Path
) -> None:
    credited = read((FIXTURE.parent / "InvoiceData-credit-and-rental.xml").read_bytes()).message
    assert isinstance(credited, m.InvoiceData)
    header = dataclasses.replace(credited.header, customer_number="1001")  # the customer with a 1.0 default
    receive(sessions, env, dataclasses.replace(credited, header=header))
    code, output = hmc("invoice", "export", "--customer", "1001", "--month", "2026-11", "--operator", "anna.andersson")
    assert code == 0, output
    sheet = load_workbook(tmp_path / "fakturaunderlag-1001-2026-11.xlsx")["Fakturarader"]
    heading = next(sheet.iter_rows(max_row=1, values_only=True))
    rows = [dict(zip(heading, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)]
    rental, credit = rows
    assert (rental["Individnummer"], rental["Hyra från"].date(), rental["Hyra till"].date()) == (  # type: ignore[union-attr]
        "HMC0048213",
        date(2026, 11, 1),
        date(2026, 11, 30),
    )
    assert (credit["Antal"], credit["Belopp"], credit["Krediterar faktura"]) == (-1, -1450, "FU-1002-202610")
    assert (rental["Kostnadsställe"], credit["Kostnadsställe"]) == ("KST-4410", None)
    with sessions() as session:  # kept, though a 1.0 customer is not sent it (parked: 1.0 has no credit lines)
        (kept,) = session.scalars(select(InvoiceRow)).all()
        assert kept.lines[1]["credits_invoice"] == "FU-1002-202610"
        assert session.scalars(select(OutboxRow)).all() == []
