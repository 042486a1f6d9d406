"""Faults mid-stream, each with 2,000 customer orders in flight: a worker killed (-9) several times, RabbitMQ
restarted, PostgreSQL stopped for 30 s, every AMQP connection closed by the server.

Each test publishes 2,000 messages (400 orders of 5) with confirms before the workers start, so all are in
flight; injects the fault once a random share has reached sesam2.in; restores the service (in a finally);
then publishes 50 more messages to show the broker recovered by itself (no restart, except after kill -9,
where the test is the supervisor). The checker (adapters/harness/checker.py) compares by message id.
Run apart with `pytest -m faults -s` (the figures are printed).
"""

from __future__ import annotations

import random
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import tests.support.faults as svc
from broker.model.codes import Side
from tests.support.fault_stream import Stream, free_ports, fresh_log_dir
from tests.support.faults import PARTITIONS

# services_restored (tests/support/fixtures.py): RabbitMQ and PostgreSQL up before and after each test.
pytestmark = [pytest.mark.faults, pytest.mark.services, pytest.mark.usefixtures("services_restored")]

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


@pytest.fixture
def stream(fault_amqp_url: str, fault_db: str, fault_prefix: str, request: pytest.FixtureRequest) -> Iterator[Stream]:
    s = Stream(fault_amqp_url, fault_db, fault_prefix, fresh_log_dir(request.node.name), http_port=free_ports(2))
    yield s
    s.close()  # again after finish() is harmless; after a failure it stops the workers


def test_worker_killed_three_times_mid_stream(stream: Stream) -> None:
    """kill -9 of a worker at random points; the test restarts it as systemd or compose would."""
    at_first_kill = None
    for low, high in ((0.05, 0.25), (0.3, 0.5), (0.55, 0.75)):
        in_flight = stream.midstream(low, high)
        at_first_kill = at_first_kill or in_flight
        stream.pool.restart(random.randrange(stream.pool.count), kill=True)
    stream.finish("kill -9 of a worker, 3 times", time.monotonic(), at_first_kill or 0)


def test_rabbitmq_restarted_mid_stream(stream: Stream, fault_amqp_url: str) -> None:
    """rabbitmqctl stop_app / start_app: the workers reconnect by themselves."""
    at_fault = stream.midstream()
    with svc.disrupting():
        svc.rabbit_stop_app()
        try:
            time.sleep(2)
        finally:
            svc.rabbit_start_app(fault_amqp_url)
    stream.finish("RabbitMQ stop_app/start_app", time.monotonic(), at_fault)


def test_postgresql_stopped_for_30_seconds_mid_stream(stream: Stream) -> None:
    """The batch fails, nothing is acknowledged, the workers retry and carry on once the store is back. Meanwhile
    what the stall alerts read turns: HmcStoreUnavailable's `hmc_store_available == 0` holds, and
    HmcWorkerStalled's `time() - hmc_worker_last_progress_timestamp_seconds` grows with the outage."""
    at_fault = stream.midstream()
    with svc.disrupting():
        svc.postgres_stop()
        try:
            time.sleep(25)
            during = [(time.time(), _scrape(url)) for url in stream.metrics_urls]
            time.sleep(5)
        finally:
            svc.postgres_start()
    restored = time.monotonic()
    deadline = restored + 20  # the retry's backoff (at most 10 s), then a round of the loop

    def fresh() -> bool:
        looks = [(time.time(), _scrape(url)) for url in stream.metrics_urls]
        return all(at - m["hmc_worker_last_progress_timestamp_seconds"] < 5 for at, m in looks)

    while not fresh() and time.monotonic() < deadline:
        time.sleep(0.5)
    recovered = fresh()
    stream.finish("PostgreSQL stopped for 30 s", restored, at_fault)
    assert any(m["hmc_store_available"] == 0 for _, m in during), during
    assert any(at - m["hmc_worker_last_progress_timestamp_seconds"] > 15 for at, m in during), during
    assert recovered, "every worker's loop goes round again once the store is back"


def test_worker_frozen_mid_stream_gives_up_its_partition_within_seconds(stream: Stream) -> None:
    """SIGSTOP of a worker under load (a hung process, a paused VM): its consuming connection falls silent,
    RabbitMQ closes it after two to three heartbeats (HMC_AMQP_HEARTBEAT_S, 3 s), and the standby's waiting
    consumer becomes the partition's active one. The stream finishes with nothing lost, duplicated under
    another id or out of order; the frozen worker is woken before the end and carries on beside the other.
    Meanwhile the rule for it turns: a frozen process answers no scrape, so Prometheus records
    `up{job="hmc-broker"} == 0` (HmcBrokerDown) and its own gauges go stale (HmcWorkerStalled cannot see it)."""
    at_fault = stream.midstream()
    home = stream.names.inbound_queues(Side.CUSTOMER, PARTITIONS)[0]  # worker 0's own partition
    # Worker 1 stands by once it has started and HMC_STANDBY_DELAY_S has passed: on a busy machine that can be
    # after the stream is under way (CI once saw one consumer of two here).
    deadline = time.monotonic() + 30
    while svc.consumers(stream.amqp_url, home) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert svc.consumers(stream.amqp_url, home) == 2, "worker 0 active on its partition, worker 1 standing by"
    frozen_at = time.monotonic()
    stream.pool.freeze(0)
    try:
        while svc.consumers(stream.amqp_url, home) > 1 and time.monotonic() - frozen_at < 60:
            time.sleep(0.2)
        takeover_s = time.monotonic() - frozen_at
        # The partition's messages flow again: its queue (the frozen worker's unacknowledged back in it) shrinks.
        waiting = svc.waiting(stream.amqp_url, home)
        while waiting and svc.waiting(stream.amqp_url, home) >= waiting and time.monotonic() - frozen_at < 60:
            time.sleep(0.2)
        flowing_s = time.monotonic() - frozen_at
        up = _answers(stream.metrics_urls[0], timeout_s=_scrape_timeout_s())
        looked_at, other = time.time(), _scrape(stream.metrics_urls[1])
    finally:
        stream.pool.thaw(0)
    print(f"\nFROZEN worker: partition taken after {takeover_s:.1f} s, its queue shrinking after {flowing_s:.1f} s")
    report = stream.finish("SIGSTOP of a worker", frozen_at, at_fault)
    assert report.ok
    assert takeover_s < 15, f"the standby took the partition only after {takeover_s:.1f} s"
    assert _alert_expression("HmcBrokerDown") == 'up{job="hmc-broker"} == 0'
    assert not up, "the frozen worker answered a scrape: HmcBrokerDown would not see it"
    # Not held up by the frozen worker's open transaction (PostgreSQL ends it: broker/bootstrap.py).
    assert looked_at - other["hmc_worker_last_progress_timestamp_seconds"] < 5, "the standby's loop goes round"


def test_all_connections_closed_by_the_server_mid_stream(stream: Stream) -> None:
    """rabbitmqctl close_all_connections: consumers and publishers reconnect by themselves."""
    at_fault = stream.midstream()
    with svc.disrupting():
        svc.close_all_connections()
    stream.finish("rabbitmqctl close_all_connections", time.monotonic(), at_fault)


def _answers(url: str, timeout_s: float) -> bool:
    """Whether a scrape of `url` succeeds within `timeout_s`: what Prometheus records as `up`."""
    try:
        urllib.request.urlopen(url, timeout=timeout_s).read()
        return True
    except OSError:  # refused, reset, or timed out
        return False


def _prometheus_config(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE / "prometheus" / name).read_text())
    return loaded


def _scrape_timeout_s() -> float:
    """The scrape timeout compose's Prometheus uses (its default, 10 s, unless prometheus.yml sets one)."""
    timeout = str(_prometheus_config("prometheus.yml").get("global", {}).get("scrape_timeout", "10s"))
    return float(timeout.removesuffix("s"))


def _alert_expression(alert: str) -> str:
    """The expression of an alert rule in compose/prometheus/alerts.yml."""
    rules = [r for g in _prometheus_config("alerts.yml")["groups"] for r in g["rules"]]
    return str(next(r["expr"] for r in rules if r.get("alert") == alert)).strip()


def _scrape(url: str) -> dict[str, float]:
    """The unlabelled samples of a worker's /metrics (what the stall rules read)."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return {
        name: float(value)
        for name, value in (line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
        if "{" not in name
    }
