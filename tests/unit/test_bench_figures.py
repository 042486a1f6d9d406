"""The bench's arithmetic and data, without any service."""

from __future__ import annotations

import pytest

from adapters.bench.data import Data
from adapters.bench.results import QUICK, Plan, Results, RssSeries
from adapters.bench.stages import stage_costs
from adapters.bench.wire import Curve, Latencies
from broker.contract.dialect import read
from broker.model import messages as m


def test_the_rate_is_taken_between_10_and_90_percent_arrived_interpolated_between_polls() -> None:
    # 100 messages: nothing for a second (start-up), then 50 per second.
    curve = Curve([(0.0, 0), (1.0, 0), (2.0, 50), (3.0, 100)])
    assert curve.at(10) == pytest.approx(1.2)
    assert curve.at(90) == pytest.approx(2.8)
    assert curve.rate(100) == pytest.approx(50.0)


def test_percentiles_are_nearest_rank() -> None:
    run = Latencies([i / 1000 for i in range(1, 101)], duration_s=2.0, offered="200 msg/s")
    assert run.percentile(50) == pytest.approx(50.0)
    assert run.percentile(99) == pytest.approx(99.0)
    assert run.percentile(100) == pytest.approx(100.0)
    assert run.msgs_per_s == pytest.approx(50.0)


def test_rss_growth_leaves_out_the_warm_up() -> None:
    series = RssSeries([(0, 50.0), (100, 90.0), (200, 95.0), (1000, 96.0)])
    assert series.growth() == pytest.approx(1.0)  # from 95 MB at 200 (20% of 1000) to 96 MB at the end
    assert RssSeries().growth() is None


def test_ratios_are_null_without_baselines() -> None:
    r = Results(mode="embedded", plan=Plan(), partitions=1, pipeline_msgs_per_s=100.0)
    assert r.ratio is None and r.vs_naive is None
    r.baseline_msgs_per_s, r.naive_msgs_per_s = 400.0, 50.0
    assert r.ratio == 0.25 and r.vs_naive == 2.0
    assert {t["key"] for t in r.targets()} >= {"ratio", "vs_naive", "p99_ms", "drain_50k_s", "stage_ratio"}


def test_the_trickle_is_its_own_run_and_its_p50_is_the_trickle_target() -> None:
    r = Results(mode="services", plan=Plan(), partitions=1)
    r.fixed = Latencies([0.030] * 99 + [0.200], duration_s=0.5, offered="200 msg/s")
    r.trickle = Latencies([0.008] * 60 + [0.012] * 40, duration_s=2.0, offered="50 msg/s")
    figures = r.key_figures()
    assert (figures["p50_ms"], figures["p99_ms"]) == pytest.approx((30.0, 30.0))
    assert (figures["trickle_p50_ms"], figures["trickle_p99_ms"]) == pytest.approx((8.0, 12.0))
    met = {t["key"]: t["met"] for t in r.targets()}
    assert met["trickle_p50_ms"] is True and met["p99_ms"] is False
    assert Results(mode="services", plan=Plan(), partitions=1).key_figures()["trickle_p50_ms"] is None


def test_the_backlog_target_is_answered_only_by_a_backlog_of_50000_or_more() -> None:
    small = Results(mode="services", plan=Plan(backlog=600), partitions=1, drain_s=1.0)
    assert small.key_figures()["drain_50k_s"] is None, "600 orders are not scaled up to 50,000"
    (target,) = [t for t in small.targets() if t["key"] == "drain_50k_s"]
    assert target["met"] is None
    full = Results(mode="services", plan=Plan(backlog=50_000), partitions=1, drain_s=45.0)
    (target,) = [t for t in full.targets() if t["key"] == "drain_50k_s"]
    assert target["value"] == 45.0 and target["met"] is True


def test_quick_is_smaller_everywhere() -> None:
    full = Plan()
    assert QUICK.messages < full.messages and QUICK.backlog < full.backlog
    assert QUICK.workers == (1, 2) and full.workers == (1, 2, 4)


def test_generated_orders_are_valid_distinct_and_about_2_kb_and_their_confirmations_answer_them() -> None:
    data = Data("0123abcd")
    data.check()
    orders = data.orders(50)
    assert len({o.message_id for o in orders}) == len({o.order_id for o in orders}) == 50
    assert all(1800 <= len(o.body) <= 2600 for o in orders)
    order = read(orders[7].body).message
    assert isinstance(order, m.CustomerOrder) and len(order.lines) >= 3
    assert order.header.message_id == orders[7].message_id
    assert order.order_id == order.header.correlation_id == orders[7].order_id
    confirmation = read(data.confirmations([orders[7]])[0].body).message
    assert isinstance(confirmation, m.OrderConfirmation)
    assert confirmation.order_id == orders[7].order_id
    assert confirmation.header.customer_number == order.header.customer_number
    assert {line.article_number for line in confirmation.lines} <= {line.article_number for line in order.lines}
    assert data.orders(1)[0].order_id not in {o.order_id for o in orders}


def test_the_stages_are_timed_beside_their_lxml_floor_and_judged_against_it() -> None:
    costs = stage_costs(Data("0123abcd"), count=20)
    assert set(costs.stages) == {"read", "translate"} and costs.floor > 0
    r = Results(mode="embedded", plan=Plan(), partitions=1, stage_us={"read": 60.0, "translate": 30.0})
    assert r.stage_ratio is None
    r.stage_floor_us = 30.0
    assert r.stage_ratio == pytest.approx(3.0) and r.cpu_bound_msgs_per_s == pytest.approx(1e6 / 90)
    target = next(t for t in r.targets() if t["key"] == "stage_ratio")
    assert target["met"] is True and target["target"] == "<= 3"
    assert r.to_json()["stage_floor_us"] == 30.0
