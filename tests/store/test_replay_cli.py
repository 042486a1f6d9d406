"""The commands as an operator types them (on the embedded store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from broker.store.tables import AuditRow
from replay.cli import register
from tests.support.replaying import ORDER, Broker

PATIENT = "194503079818"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.sqlite'}"


@pytest.fixture
def hmc(db_url: str):  # type: ignore[no-untyped-def]
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    env = {"HMC_DB_URL": db_url, "HMC_CUSTOMERS": "1001:Skåne:websesam-skane:invoice,1002:Halland:websesam-halland"}

    def run(*args: str, code: int = 0, **extra: str) -> str:
        result = runner.invoke(app, list(args), env={**env, **extra}, catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.stdout if "--json" in args else result.output  # --json: stdout alone is the document

    return run


def test_list_show_and_the_rules_on_patient_data(broker: Broker, hmc) -> None:  # type: ignore[no-untyped-def]
    broker.transport.publish_ok = False
    pk = broker.receive(ORDER.read_bytes()).id
    broker.park_after_failed_publishes()

    listed = json.loads(hmc("messages", "list", "--status", "parked,rejected", "--json"))
    (item,) = listed["messages"]
    assert (item["id"], item["status"], item["type"]) == (pk, "parked", "CustomerOrder")
    assert item["patient"].startswith("[patient-ref:") and listed["next"] is None
    table = hmc("messages", "list", "--customer", "1002")
    assert "parked" in table and "CustomerOrder" in table and PATIENT not in table

    refused = hmc("messages", "list", "--patient", PATIENT, code=2)
    assert "--operator" in refused and PATIENT not in refused
    found = json.loads(
        hmc("messages", "list", "--patient", PATIENT, "--operator", "anna.k", "--reason", "INC-1", "--json")
    )
    assert [m["id"] for m in found["messages"]] == [pk]

    by_id = json.loads(hmc("messages", "list", "--id", f"#{pk}", "--json"))
    assert [m["id"] for m in by_id["messages"]] == [pk]
    assert json.loads(hmc("messages", "list", "--id", str(pk), "--status", "resolved", "--json"))["messages"] == []
    assert "not a row id" in hmc("messages", "list", "--id", "12,x", code=2)

    shown = hmc("messages", "show", str(pk))
    assert "unroutable: NO_ROUTE" in shown and "sesam2.out / CustomerOrder" in shown and PATIENT not in shown
    assert "translate" in shown and "[patient-id:" in shown
    hmc("messages", "show", str(pk), "--reveal", code=2)
    revealed = json.loads(
        hmc("messages", "show", str(pk), "--reveal", "--operator", "anna.k", "--reason", "INC-1", "--json")
    )
    assert revealed["message"]["patient"] == PATIENT

    audit = json.loads(hmc("audit", "--json"))
    assert [a["action"] for a in audit] == ["reveal", "search"]
    assert all(PATIENT not in json.dumps(a) for a in audit)


def test_replay_dry_run_refusals_and_the_trail(broker: Broker, hmc, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    broker.transport.publish_ok = False
    pk = broker.receive(ORDER.read_bytes()).id
    broker.park_after_failed_publishes()

    assert "--operator" in hmc("replay", str(pk), "--dry-run", code=2)
    dry = json.loads(hmc("replay", str(pk), "--dry-run", "--operator", "anna.k", "--reason", "INC-1", "--json"))
    (outcome,) = dry["outcomes"]
    assert outcome["status"] == "would-send" and dry["dry_run"] is True
    by_filter = hmc("replay", "--status", "parked", "--dry-run", "--operator", "anna.k", "--reason", "INC-1")
    assert "would-send" in by_filter
    assert "filter" in hmc("replay", "--operator", "a", "--reason", "b", "--dry-run", code=2)
    # A real replay needs RabbitMQ: memory:// is in-process only.
    assert "memory://" in hmc("replay", str(pk), "--operator", "a", "--reason", "b", code=2)

    fixed = tmp_path / "edited.xml"
    fixed.write_bytes(ORDER.read_bytes().replace(b"<CustomerNumber>1002<", b"<CustomerNumber>1001<"))
    refused = hmc("replay", str(pk), "--payload", str(fixed), "--dry-run", "--operator", "a", "--reason", "b", code=2)
    assert "CustomerNumber" in refused
    fixed.write_bytes(ORDER.read_bytes().replace(b"<Priority>urgent<", b"<Priority>normal<"))
    edited = json.loads(
        hmc("replay", str(pk), "--payload", str(fixed), "--dry-run", "--operator", "a", "--reason", "b", "--json")
    )
    assert edited["outcomes"][0]["status"] == "would-send"

    resolved = json.loads(hmc("messages", "resolve", str(pk), "--operator", "a", "--reason", "paper routine", "--json"))
    assert resolved == {"resolved": [{"id": pk, "outcome": "was parked"}]}
    assert json.loads(hmc("messages", "list", "--json"))["messages"][0]["status"] == "resolved"
    out = tmp_path / "export.jsonl"
    hmc("messages", "export", str(pk), "--out", str(out), "--operator", "a", "--reason", "case file")
    (line,) = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["id"] == pk and PATIENT not in line

    pruned = json.loads(hmc("prune", "--dry-run", "--json"))
    assert pruned["dry_run"] and pruned["removed"][0]["messages"] == 0
    assert "--operator" in hmc("prune", "--older-than", "90d", code=2)
    assert "removed 0 payload" in hmc("prune", "--older-than", "90d", "--operator", "retention-cron")
    hmc("prune", "--older-than", "ninety", "--operator", "x", code=2)

    with broker.sessions() as s:
        actions = s.scalars(select(AuditRow.action).order_by(AuditRow.id)).all()
    assert actions == ["replay-dry-run", "replay-dry-run", "replay-dry-run", "resolve", "export"]
    assert "replay-dry-run" in hmc("audit", "--action", "replay-dry-run")
    assert "job" in hmc("replay", "--jobs")


def test_the_search_bench_prints_its_timings_as_json(hmc) -> None:  # type: ignore[no-untyped-def]
    """On an empty store: seeds it, times each search; with --json stdout is the timings alone."""
    timed = json.loads(hmc("messages", "bench", "--rows", "300", "--repeat", "1", "--json"))
    assert timed["repeat"] == 1 and len(timed["searches"]) >= 10
    assert all(s["median_ms"] >= 0 and isinstance(s["rows"], int) for s in timed["searches"])
