"""`hmc-broker soak` for a few seconds: the command runs workers, restarts them, reports memory
over time and the checker's result, and exits 0 only when nothing was lost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# services_restored (tests/support/fixtures.py): RabbitMQ and PostgreSQL up before and after each test.
pytestmark = [pytest.mark.faults, pytest.mark.services, pytest.mark.usefixtures("services_restored")]


def test_a_short_soak_loses_nothing_and_reports_memory_over_time(fault_amqp_url: str, fault_db: str) -> None:
    argv = [sys.executable, "-m", "broker.cli", "soak", "--minutes", "0.2", "--rate", "20"]
    argv += ["--restart-every", "5", "--sample-every", "3", "--json"]
    argv += ["--amqp-url", fault_amqp_url, "--db-url", fault_db]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)  # stdout is the result alone; the samples as they come are on stderr
    print(f"\nSOAK (12 s): {json.dumps(result['report'])}, drained {result['drain_s']} s, samples {result['samples']}")
    report = result["report"]
    assert result["crashes"] == [], "a worker ended by itself"
    assert result["ok"] and report["lost"] == 0 and report["duplicates_other_id"] == 0
    assert report["out_of_order"] == 0
    assert report["sent"] >= 200 and report["delivered"] + report["parked"] == report["sent"]
    assert [r["how"] for r in result["restarts"]] == ["SIGTERM", "SIGTERM"]  # kill -9: tests/e2e/test_faults.py
    assert len(result["samples"]) >= 4
    assert all(len(s["rss_mb"]) == 2 for s in result["samples"])
    assert max(max(s["rss_mb"]) for s in result["samples"]) > 20, "a running worker's RSS is tens of MB"
