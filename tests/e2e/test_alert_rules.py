"""The alert rules of compose/prometheus/alerts.yml, run by Prometheus's own rule engine (`promtool test rules`) on
made-up series: each fires for the fault it names, and stays quiet for the normal case next to it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support.tools import require_promtool

RULES = Path(__file__).resolve().parents[2] / "compose/prometheus/alerts.yml"
WORKER = {"job": "hmc-broker", "instance": "worker-0:9108"}


def _labels(extra: dict[str, str] | None = None) -> str:
    labels = {**WORKER, **(extra or {})}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def _run(tmp_path: Path, series: list[dict[str, str]], alerts: list[dict[str, Any]]) -> None:
    """promtool evaluates RULES on `series` (one sample a minute) and compares the alerts at each time."""
    tests = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": alerts}],
    }
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests), encoding="utf-8")
    done = subprocess.run(
        [str(require_promtool()), "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _firing(alert: str, at: str, labels: dict[str, str], value: str) -> dict[str, Any]:
    """`alert` firing at `at` with these labels, its annotations as Prometheus renders them for `value`."""
    rule = next(r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if r.get("alert") == alert)
    annotations = {}
    for name, text in rule["annotations"].items():
        text = text.replace("{{ $value }}", value)
        for key, label in labels.items():
            text = text.replace(f"{{{{ $labels.{key} }}}}", label)
        annotations[name] = text
    return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": labels, "exp_annotations": annotations}]}


def _quiet(alert: str, at: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": []}


def test_a_worker_whose_loop_stopped_is_stalled_and_one_that_goes_round_is_not(tmp_path: Path) -> None:
    # The loop's clock: a worker going round sets it to now every minute; a stuck one keeps its last value.
    going = " ".join(str(60 * i) for i in range(20))
    stuck = "0 60 120 " + " ".join("120" for _ in range(17))
    series = [
        {"series": "hmc_worker_last_progress_timestamp_seconds" + _labels({"instance": "a"}), "values": going},
        {"series": "hmc_worker_last_progress_timestamp_seconds" + _labels({"instance": "b"}), "values": stuck},
    ]
    stalled = {**WORKER, "instance": "b", "severity": "critical"}
    alerts = [_quiet("HmcWorkerStalled", "3m"), _firing("HmcWorkerStalled", "10m", stalled, "480")]
    _run(tmp_path, series, alerts)


def test_an_unreachable_store_fires_after_a_minute_and_a_blip_does_not(tmp_path: Path) -> None:
    series = [
        {"series": "hmc_store_available" + _labels({"instance": "a"}), "values": "1 1 0 1 1 1 1 1"},
        {"series": "hmc_store_available" + _labels({"instance": "b"}), "values": "1 1 0 0 0 0 0 0"},
    ]
    down = {**WORKER, "instance": "b", "severity": "critical"}
    _run(tmp_path, series, [_firing("HmcStoreUnavailable", "6m", down, "0")])


def test_dead_letters_fire_after_five_minutes(tmp_path: Path) -> None:
    queue = "hmc.dead-letter"
    series = [{"series": "hmc_queue_messages" + _labels({"queue": queue}), "values": "0 0 3 3 3 3 3 3 3 3"}]
    alerts = [_quiet("HmcDeadLetters", "4m"), _firing("HmcDeadLetters", "9m", {"severity": "warning"}, "3")]
    _run(tmp_path, series, alerts)


def test_a_growing_outbox_fires_and_one_draining_after_an_outage_does_not(tmp_path: Path) -> None:
    growing = [{"series": "hmc_outbox_backlog" + _labels(), "values": "200+50x40"}]
    draining = [{"series": "hmc_outbox_backlog" + _labels(), "values": "5000-100x40"}]
    for case, series, alerts in (
        ("growing", growing, [_firing("HmcOutboxBacklog", "35m", {"severity": "warning"}, "1950")]),
        ("draining", draining, [_quiet("HmcOutboxBacklog", "35m")]),
    ):
        (tmp_path / case).mkdir()
        _run(tmp_path / case, series, alerts)


def test_messages_taken_after_a_long_wait_fire_and_a_short_wait_does_not(tmp_path: Path) -> None:
    series = [
        {"series": "hmc_inbound_wait_seconds" + _labels({"side": "customer"}), "values": "0 2 1 0 3 1 0 2 1 0 1 2"},
        {"series": "hmc_inbound_wait_seconds" + _labels({"side": "sesam2"}), "values": "1 60 400 420 450 500 520x6"},
    ]
    alerts = [
        _quiet("HmcInboundWaiting", "5m"),
        _firing("HmcInboundWaiting", "11m", {"side": "sesam2", "severity": "warning"}, "520"),
    ]
    _run(tmp_path, series, alerts)


def test_a_partition_waiting_with_no_consumer_fires_and_one_being_consumed_does_not(tmp_path: Path) -> None:
    gone, served = "hmc.broker.customer-in.0", "hmc.broker.customer-in.1"
    series = [
        {"series": "hmc_queue_messages" + _labels({"queue": gone}), "values": "0 5 9 12 15 18 20"},
        {"series": "hmc_queue_consumers" + _labels({"queue": gone}), "values": "1 0 0 0 0 0 0"},
        {"series": "hmc_queue_messages" + _labels({"queue": served}), "values": "40 40 40 40 40 40 40"},
        {"series": "hmc_queue_consumers" + _labels({"queue": served}), "values": "1 1 1 1 1 1 1"},
    ]
    alerts = [_firing("HmcInboundUnconsumed", "5m", {"queue": gone, "severity": "critical"}, "18")]
    _run(tmp_path, series, alerts)
