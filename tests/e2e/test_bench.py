"""`hmc-broker bench` end to end with tiny numbers: the JSON it promises, consistent with itself.

Never an assertion on speed: this machine's figures drift from run to run (that is why the bench
reports ratios). The services run needs RabbitMQ and PostgreSQL; it skips when they are not reachable,
and fails instead with HMC_REQUIRE_SERVICES=1 (CI).
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import pika
import pytest
import typer
from sqlalchemy import create_engine, make_url, text
from typer.testing import CliRunner

from adapters.bench.cli import register
from tests.support.tools import require_valgrind

AMQP_URL = os.environ.get("HMC_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
DB_URL = os.environ.get("HMC_TEST_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TINY = [
    "--quick",
    "--json",
    "--messages", "200",
    "--backlog", "300",
    "--workers", "1",
    "--baseline-messages", "1000",
    "--naive-messages", "100",
    "--latency-messages", "100",
    "--trickle-messages", "50",
    "--saturation-messages", "100",
]  # fmt: skip
KEYS = (
    "baseline_msgs_per_s",
    "naive_msgs_per_s",
    "pipeline_msgs_per_s",
    "ratio",
    "vs_naive",
    "p50_ms",
    "p99_ms",
    "trickle_p50_ms",
    "drain_s",
    "rss_mb",
    "worker_cpu_us",
    "stage_floor_us",
    "workers",
)


def _services() -> None:
    for name, url, port in (("RabbitMQ", AMQP_URL, 5672), ("PostgreSQL", DB_URL, 5432)):
        parts = urlsplit(url)
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or port), timeout=2):
                pass
        except OSError as e:
            reason = f"{name} not reachable at {parts.hostname}:{parts.port or port} ({e})"
            if os.environ.get("HMC_REQUIRE_SERVICES") == "1":
                pytest.fail(reason)
            pytest.skip(reason)


def _bench(*args: str) -> dict[str, Any]:
    app = typer.Typer()

    @app.callback()
    def main() -> None: ...

    register(app)
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    out: dict[str, Any] = json.loads(result.stdout)
    return out


@pytest.mark.services
def test_bench_against_rabbitmq_and_postgresql_reports_consistent_figures_and_cleans_up() -> None:
    _services()
    out = _bench(*TINY, "--amqp-url", AMQP_URL, "--db-url", DB_URL)
    for key in KEYS:
        assert key in out, key
    for key in ("baseline_msgs_per_s", "naive_msgs_per_s", "pipeline_msgs_per_s", "return_msgs_per_s",
                "p50_ms", "p99_ms", "trickle_p50_ms", "drain_s", "rss_mb", "worker_cpu_us"):  # fmt: skip
        assert out[key] > 0, key
    assert math.isclose(out["ratio"], out["pipeline_msgs_per_s"] / out["baseline_msgs_per_s"])
    assert math.isclose(out["vs_naive"], out["pipeline_msgs_per_s"] / out["naive_msgs_per_s"])
    assert out["workers"] == {"1": out["pipeline_msgs_per_s"]}
    assert out["p50_ms"] <= out["p99_ms"] and out["trickle_p50_ms"] <= out["trickle_p99_ms"]
    # Every order and confirmation went through, each once: 200 + 200 (paths) + 100 + 50 + 100 (latency) + 300.
    assert out["store"] == {"delivered": 950}
    # Nothing left behind: the run's queues and its database are gone.
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    try:
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            connection.channel().queue_declare(f"bench{out['run']}.sesam2.in", passive=True)
    finally:
        if connection.is_open:
            connection.close()
    engine = create_engine(make_url(DB_URL).set(database="postgres"))
    try:
        with engine.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": f"hmc_bench_{out['run']}"})
            assert found.first() is None
    finally:
        engine.dispose()


def test_embedded_bench_has_no_baseline_and_says_so() -> None:
    out = _bench(*TINY, "--embedded")
    assert out["mode"] == "embedded"
    assert out["baseline_msgs_per_s"] is None and out["naive_msgs_per_s"] is None
    assert out["ratio"] is None and out["vs_naive"] is None
    assert out["pipeline_msgs_per_s"] > 0 and out["return_msgs_per_s"] > 0 and out["drain_s"] > 0
    assert out["workers"] == {"1": out["pipeline_msgs_per_s"]}
    assert any("no raw or naive baseline" in note for note in out["notes"])


def test_the_stages_instructions_per_order_as_valgrind_counts_them() -> None:
    """`python -m adapters.bench.instructions`: each stage's instructions per bench order, the difference of
    two runs under callgrind; reading the order costs more than lxml's parse and XSD, which are part of it."""
    require_valgrind()
    done = subprocess.run(
        [sys.executable, "-m", "adapters.bench.instructions", "read", "floor", "--orders", "20"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line.split() for line in done.stdout.splitlines() if "per order" in line]
    counts = {row[0]: int(row[1].replace(",", "")) for row in rows}
    assert set(counts) == {"read", "floor"}
    assert counts["read"] > counts["floor"] > 0
