"""The demo on the embedded default (and on the machine's services): what it prints is what the store holds."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.harness.demo import Demo, account_from_store, demo_settings, histories, refills
from broker.cli import app
from broker.model.codes import OrderStatus


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    db = tmp_path_factory.mktemp("demo") / "demo.sqlite"
    demo = Demo(demo_settings("memory://", f"sqlite:///{db}"), count=40, seed=11)
    worker = demo.run()
    return demo, worker


def test_every_message_sent_is_in_the_store(finished) -> None:  # type: ignore[no-untyped-def]
    demo, worker = finished
    lines = account_from_store(demo, worker)
    assert {line.message_type: line.stored for line in lines} == dict(demo.account.sent)
    inbound = {line.message_type for line in lines if line.direction == "inbound"}
    assert {"CustomerOrder", "WorkOrder", "PickupOrder", "FaultReport", "OrthopaedicReferral"} <= inbound


def test_customers_receive_every_delivered_answer_and_invoices_only_with_permission(finished) -> None:  # type: ignore[no-untyped-def]
    demo, worker = finished
    received: Counter[str] = Counter()
    for (_, kind), n in demo.account.received.items():
        received[kind] += n
    for line in account_from_store(demo, worker):
        if line.direction == "outbound" and line.message_type != "ArticleRegisterUpdate":
            assert received[line.message_type] == line.delivered, line
            assert line.rejected == 0
    invoices = {c for (c, kind) in demo.account.received if kind == "InvoiceData"}
    assert invoices == {c.number for c in demo.settings.customers if c.invoice}
    broadcast = {c for (c, kind) in demo.account.received if kind == "ArticleRegisterUpdate"}
    assert broadcast == {c.number for c in demo.settings.customers}


def test_invalid_messages_come_back_as_rejections_naming_the_rule(finished) -> None:  # type: ignore[no-untyped-def]
    demo, _ = finished
    rules = {why: [p.rule for p in rejection.problems] for why, rejection in demo.account.rejections}
    assert rules == {
        "personnummer with a wrong check digit": ["personnummer.check-digit"],
        "an article that is not in the catalog": ["catalog.unknown-article"],
        "a priority outside the code list": ["schema.code-list"],
        "sent under another customer's number": ["security.customer-mismatch"],
    }


def test_order_histories_come_from_the_order_view(finished) -> None:  # type: ignore[no-untyped-def]
    demo, worker = finished
    orders = histories(demo, worker)
    assert orders
    for order in orders:
        assert order.status in {s.value for s in OrderStatus}
        assert order.steps[0][0] == "CustomerOrder"


def test_the_command_prints_an_account_that_matches_its_store(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["demo", "--count", "30", "--seed", "5", "--db-url", f"sqlite:///{tmp_path / 'd.sqlite'}"],
        env={"HMC_AMQP_URL": "", "HMC_DB_URL": "", "COLUMNS": "140"},
    )
    assert result.exit_code == 0, result.output
    sent, stored = map(int, re.search(r"(\d+) messages sent, (\d+) in the store", result.output).groups())  # type: ignore[union-attr]
    assert sent == stored > 30
    assert "personnummer.check-digit at /CustomerOrder/Patient/PatientId" in result.output
    assert "SESAM2 order" in result.output


def test_the_command_with_json_prints_the_account_alone_on_stdout(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["demo", "--count", "30", "--seed", "5", "--db-url", f"sqlite:///{tmp_path / 'd.sqlite'}", "--json"],
        env={"HMC_AMQP_URL": "", "HMC_DB_URL": ""},
    )
    assert result.exit_code == 0, result.output
    account = json.loads(result.stdout)
    assert account["seed"] == 5 and "seed 5" in result.stderr  # what it says as it goes is on stderr
    assert sum(line["sent"] for line in account["per_type"]) == sum(line["stored"] for line in account["per_type"]) > 30
    rules = {p["rule"] for r in account["rejections"] for p in r["problems"]}
    assert "personnummer.check-digit" in rules
    assert any(o["sesam2_order_number"] for o in account["orders"]) and account["refills"]


def test_an_under_run_buffer_store_is_refilled_once(finished) -> None:  # type: ignore[no-untyped-def]
    demo, worker = finished
    forced = [r for r in refills(demo, worker) if (r.store, r.article) == ("BUF-1001-01", "120606")]
    assert len(forced) == 1 and forced[0].on_hand_at_order < forced[0].safety_level
    assert forced[0].status in ("open", "delivered")  # the simulated SESAM2 sends most delivery notes at once


def test_the_same_seed_repeats_a_run(tmp_path: Path) -> None:
    """`--seed N` repeats a run: the same messages, so the same answers from the simulated SESAM2 and the same
    account (the first run's store and a second's are separate)."""

    def run(name: str) -> tuple[dict[str, int], list[tuple[str, str, int, int]]]:
        demo = Demo(demo_settings("memory://", f"sqlite:///{tmp_path / name}"), count=30, seed=5)
        worker = demo.run()
        lines = [(x.direction, x.message_type, x.stored, x.delivered) for x in account_from_store(demo, worker)]
        return dict(demo.account.sent), sorted(lines)

    assert run("first.sqlite") == run("second.sqlite")
