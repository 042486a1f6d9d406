"""The whole run: the tests' one axis, Hypothesis's profile, the shared fixtures, and a check that every
log line the broker writes during the tests goes through the production log configuration and that at the
end none holds a patient identifier in clear.

The axis is what a test needs: tests/unit/ nothing (no database, RabbitMQ, subprocess or network),
tests/store/ SQLite and PostgreSQL, tests/amqp/ RabbitMQ, tests/e2e/ processes and the whole broker. Each
test gets its directory's marker (`pytest -m unit`); `hostile` and `faults` are markers its module sets.

Hypothesis: HYPOTHESIS_PROFILE=dev (the default: at most 10 examples a test, for the inner loop) or ci
(Hypothesis's own defaults, as .ci/run sets); tests/support/profiles.py.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.observability import logs
from tests.support import profiles

pytest_plugins = ["tests.support.fixtures"]  # the shared fixtures
profiles.load()  # HYPOTHESIS_PROFILE: dev (the default) or ci

TESTS = Path(__file__).parent
FIXTURES = TESTS / "fixtures"
AXIS = ("unit", "store", "amqp", "e2e")
# Every patient identifier the fixtures carry (12-digit personnummer/samordningsnummer, reservnummer).
_PATIENT_ELEMENTS = re.compile(rb"<(?:PatientId|PATNR)>([^<]+)</")


@pytest.fixture(scope="session", autouse=True)
def logs_never_show_patient_ids(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    log_file = tmp_path_factory.mktemp("logs") / "broker.log"
    logs.configure("DEBUG", "json")
    handler = logging.getLogger().handlers[0]
    file_handler = logging.FileHandler(log_file, encoding="utf-8")
    file_handler.setFormatter(handler.formatter)
    logging.getLogger().addHandler(file_handler)
    yield
    file_handler.close()
    text = log_file.read_text(encoding="utf-8")
    ids = {
        m.group(1).decode().strip() for p in FIXTURES.rglob("*.xml") for m in _PATIENT_ELEMENTS.finditer(p.read_bytes())
    }
    digits = {re.sub(r"\D", "", i)[-10:] for i in ids if len(re.sub(r"\D", "", i)) >= 10}
    leaked = sorted(d for d in digits if d in re.sub(r"[-+]", "", text))
    assert not leaked, f"patient identifiers in clear in the test run's logs: {len(leaked)}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The marker of each test's directory on the axis: a test in tests/unit/ is `unit`, and so on."""
    for item in items:
        parts = item.path.relative_to(TESTS).parts if item.path.is_relative_to(TESTS) else ()
        if parts and parts[0] in AXIS:
            item.add_marker(parts[0])
