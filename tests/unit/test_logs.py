"""Log lines are JSON with their context, and never carry a patient identifier in clear."""

from __future__ import annotations

import io
import json
import logging

import pytest
import structlog

from broker.observability import logs


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    saved = logging.getLogger().handlers[:]
    logs.configure("INFO", "json")
    yield stream
    logging.getLogger().handlers[:] = saved  # the whole run's log check keeps its handlers


def test_stdlib_and_structlog_lines_are_json_with_their_fields(captured: io.StringIO) -> None:
    logging.getLogger("broker.pipeline").warning("security event", extra={"rule": "security.forged-customer"})
    structlog.get_logger("broker.runtime").info("batch", messages=3, stage="publish", outcome="ok")
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert (first["event"], first["level"], first["rule"]) == ("security event", "warning", "security.forged-customer")
    assert (second["stage"], second["outcome"], second["messages"]) == ("publish", "ok", 3)
    assert "timestamp" in second


@pytest.mark.parametrize("pnr", ["191212121212", "19121212-1212", "121212-1212", "1212121212", "991234567890"])
def test_patient_identifiers_are_masked_in_every_field(captured: io.StringIO, pnr: str) -> None:
    logging.getLogger("x").error("bad order for %s", pnr, extra={"detail": {"patient": [pnr]}})
    structlog.get_logger("y").info(f"patient {pnr}", note=("text", pnr))
    text = captured.getvalue()
    assert pnr not in text and pnr.replace("-", "") not in text
    assert text.count("[patient-id:") == 4
