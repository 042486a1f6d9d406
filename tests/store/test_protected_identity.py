"""Protected identity (#17): for a patient flagged ProtectedIdentity, name and addresses never appear in
any output channel (logs, the store's events, the wire tap, Rejections, `messages list/show/export`, revealed
or not); SESAM2 receives the flag, and the name and address it needs to deliver."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from broker.bootstrap import store as open_store
from broker.config import Settings
from broker.contract.dialect import read
from broker.envelope import Exchange
from broker.model import messages as m
from broker.model.codes import Side
from broker.runtime import Worker
from broker.store.tables import MessageRow
from replay import edit as editing
from replay.cli import register
from tests.support.commands import run_command
from tests.support.fakes import FakeTransport
from tests.support.fixtures import every_step
from tests.support.replaying import CUSTOMERS, ORDER, Broker

# Everything that says who the patient is or where they live, as the fixture has it.
SECRETS = ("Elsa Karlsson", "Björkvägen 14", "753 29", "Uppsala", "070-123 45 67", "Portkod 4711")
PROTECTED = ORDER.read_bytes().replace(
    b"<Name>Elsa Karlsson</Name>\n  </Patient>",
    b"<Name>Elsa Karlsson</Name>\n    <ProtectedIdentity>true</ProtectedIdentity>\n  </Patient>",
)
# The same order, invalid (a postal code that is no Swedish one, a note too long): it is rejected.
INVALID = (
    PROTECTED.replace(b"58156064-d632-45b6-90ad-f49cc0ab6b60", b"58156064-d632-45b6-90ad-f49cc0ab6b61")
    .replace(b"<PostalCode>753 29</PostalCode>", b"<PostalCode>053 29</PostalCode>")
    .replace(b"<Note>", b"<Note>" + b"x" * 4001, 1)
)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture
def tapped(db_url: str) -> Broker:
    settings = Settings(db_url=db_url, customers=CUSTOMERS, publish_attempts=2, wire_tap=True)
    transport = FakeTransport()
    sessions = open_store(settings)
    return Broker(settings, transport, Worker(settings, transport, sessions), sessions)  # type: ignore[arg-type]


def cli(db_url: str, *args: str) -> str:
    return run_command(register, db_url, *args)


def leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def test_the_fixture_is_protected_and_sesam2_gets_the_flag_and_the_address() -> None:
    message = read(PROTECTED).message
    assert isinstance(message, m.CustomerOrder) and message.patient and message.patient.protected is True
    assert leaks(PROTECTED.decode()) == list(SECRETS)  # the test would see every one of them


def test_no_output_channel_shows_a_protected_identity(
    tapped: Broker, db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ok = tapped.receive(PROTECTED)
    rejected = tapped.receive(INVALID)
    assert (ok.status, rejected.status) == ("delivered", "rejected")

    to_sesam2 = [o for o in tapped.transport.published if o.exchange is Exchange.SESAM2_OUT]
    (translated,) = to_sesam2  # SESAM2 needs name and address to deliver, and learns they are protected
    assert b"<PATSKYDD>J</PATSKYDD>" in translated.body and b"Elsa Karlsson" in translated.body

    channels: dict[str, str] = {"logs": caplog.text}
    others = [o for o in tapped.transport.published if o.exchange is not Exchange.SESAM2_OUT]
    channels["wire tap and Rejection"] = "\n".join(o.body.decode() for o in others)
    assert any(o.message_type == "Rejection" for o in others)
    with tapped.sessions() as session:
        channels["events"] = "\n".join(e.detail or "" for e in every_step(session))
        channels["last errors"] = "\n".join(r.last_error or "" for r in session.scalars(select(MessageRow)))
    channels["list"] = cli(db_url, "messages", "list", "--json")
    for pk in (ok.id, rejected.id):
        channels[f"show {pk}"] = cli(db_url, "messages", "show", str(pk), "--json")
        channels[f"show {pk} revealed"] = cli(
            db_url, "messages", "show", str(pk), "--reveal", "--operator", "anna.k", "--reason", "INC-1", "--json"
        )
    out = tmp_path / "case.jsonl"
    for name, reveal in (("export", ()), ("export revealed", ("--reveal",))):
        audited = ("--operator", "anna.k", "--reason", "INC-1")
        cli(db_url, "messages", "export", "--customer", "1002", "--out", str(out), *reveal, *audited)
        channels[name] = out.read_text()

    assert {name: leaks(text) for name, text in channels.items() if leaks(text)} == {}
    # What is shown still says something was there.
    assert "[skyddad identitet]" in json.loads(channels[f"show {ok.id}"])["payload"]


def test_an_unprotected_patient_is_shown_as_before(tapped: Broker, db_url: str) -> None:
    row = tapped.receive(ORDER.read_bytes())
    assert "Elsa Karlsson" in json.loads(cli(db_url, "messages", "show", str(row.id), "--json"))["payload"]


@pytest.mark.parametrize("flag_kept", [True, False])
def test_an_edit_s_diff_withholds_a_protected_identity(
    tapped: Broker, db_url: str, tmp_path: Path, flag_kept: bool
) -> None:
    """`replay --edit` (here --payload) prints the edit's diff and keeps it with the replay and the audit trail:
    for a protected patient the diff's lines hold name and address, before the edit and after it (also when
    the edit takes the flag away)."""
    tapped.transport.publish_ok = False
    pk = tapped.receive(PROTECTED).id
    tapped.park_after_failed_publishes()
    edited = PROTECTED.replace("Björkvägen 14 lgh 1102".encode(), "Lindvägen 3".encode())
    if not flag_kept:
        edited = edited.replace(b"<ProtectedIdentity>true</ProtectedIdentity>", b"")
    payload = tmp_path / "edited.xml"
    payload.write_bytes(edited)
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app,
        ["replay", str(pk), "--payload", str(payload), "--dry-run", "--operator", "anna.k", "--reason", "INC-2"],
        env={"HMC_DB_URL": db_url, "HMC_CUSTOMERS": "1002:Halland:websesam-halland"},
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    printed = result.output + result.stderr
    assert "@@" in printed and "[skyddad identitet]" in printed  # the diff is shown, its personal texts withheld
    trail = cli(db_url, "audit", "--json")
    assert "[skyddad identitet]" in trail
    for shown in (printed, trail):
        assert leaks(shown) == [] and "Lindvägen 3" not in shown


def test_an_edit_that_leaves_a_protected_document_invalid_has_its_diff_withheld_whole() -> None:
    broken = PROTECTED.replace("Björkvägen 14 lgh 1102".encode(), "Lindvägen 3".encode()).replace(b"<Priority>", b"<X>")
    diff = editing.unified_diff(PROTECTED, broken, "message.xml")
    assert diff.startswith("[skyddad identitet]") and leaks(diff) == [] and "Lindvägen" not in diff
    plain = ORDER.read_bytes()  # no flag: the diff is the operator's as before
    assert "Elsa Karlsson" in editing.unified_diff(plain, plain.replace(b"Elsa", b"Else"), "message.xml")


RECEIPT = (
    Path(__file__).resolve().parents[1] / "fixtures/sesam2/valid/DeliveryReceipt-signed-at-home.xml"
).read_bytes()


def receipt_for_the_order(signed_by: str, note_order: str = "WS-1002-2026-004817") -> bytes:
    """SESAM2's receipt of the delivery of the fixture's order: no patient in it, so no flag of its own."""
    return (
        RECEIPT.replace(b"<KUNDNR>1001<", b"<KUNDNR>1002<")
        .replace(b"WS-1001-2026-011290", note_order.encode())
        .replace(b"Tolvan Tolvansson", signed_by.encode())
    )


@pytest.mark.parametrize("order_protected", [True, False])
def test_sesam2_s_answer_about_a_protected_patient_s_order_is_withheld_too(
    tapped: Broker, db_url: str, tmp_path: Path, order_protected: bool
) -> None:
    """SESAM2's answers name no patient, so they cannot carry the flag: the protection of the order's opening
    message holds for every message about that order, routed to the customer or parked (here: one the customer
    gets, and one whose publish failed until it was parked)."""
    tapped.receive(PROTECTED if order_protected else ORDER.read_bytes())
    delivered = tapped.receive(receipt_for_the_order("Elsa Karlsson"), Side.SESAM2, "DeliveryReceipt")
    assert delivered.status == "delivered", delivered.last_error
    # Signed by someone who lives there: withheld as well (it says who shares the protected home).
    tapped.transport.publish_ok = False
    relative = tapped.receive(
        receipt_for_the_order("Maria Karlsson").replace(b"b224b8b2-7499-42ce", b"b224b8b2-7499-42cf"),
        Side.SESAM2,
        "DeliveryReceipt",
    )
    tapped.park_after_failed_publishes()
    assert tapped.row(relative.id).status == "parked"
    channels = {f"show {pk}": cli(db_url, "messages", "show", str(pk), "--json") for pk in (delivered.id, relative.id)}
    channels |= {
        f"show {pk} revealed": cli(
            db_url, "messages", "show", str(pk), "--reveal", "--operator", "anna.k", "--reason", "INC-3", "--json"
        )
        for pk in (delivered.id, relative.id)
    }
    out = tmp_path / "case.jsonl"
    cli(db_url, "messages", "export", "--customer", "1002", "--out", str(out), "--operator", "anna.k", "--reason", "x")
    channels["export"] = out.read_text()
    shown = {name: [s for s in ("Elsa Karlsson", "Maria Karlsson") if s in text] for name, text in channels.items()}
    if order_protected:
        assert shown == {name: [] for name in channels}
        answer = json.loads(channels[f"show {delivered.id}"])
        assert "<SignedBy>[skyddad identitet]</SignedBy>" in answer["published"][0]["body"]  # to the customer
        assert "<SIGNERAD>[skyddad identitet]</SIGNERAD>" in answer["payload"]
    else:  # an unprotected patient's answers are shown as before
        assert shown[f"show {delivered.id}"] == ["Elsa Karlsson"] and shown[f"show {relative.id}"] == ["Maria Karlsson"]
        assert shown["export"] == ["Elsa Karlsson", "Maria Karlsson"]
