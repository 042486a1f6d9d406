"""`inject` and `simulate-sesam2` against the machine's RabbitMQ, checked from outside with pika."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pika
import pytest
from pika.adapters.blocking_connection import BlockingChannel
from typer.testing import CliRunner

from adapters.amqp.topology import Names
from adapters.harness import wire
from adapters.harness.cli import app
from adapters.harness.generator import Generator
from broker.contract.dialect import DIALECTS
from broker.envelope import Exchange
from broker.model import messages as m
from broker.model.codes import Side
from broker.translation import derived_id, forward
from tests.support.harness import take_all, valid

services = pytest.mark.services
runner = CliRunner()
SESAM2 = DIALECTS[Side.SESAM2]
Bind = Callable[[str, str], str]
MIX = "CustomerOrder=70,WorkOrder=10,FaultReport=10,PickupOrder=10"


def _invoke(*args: str) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


@services
def test_inject_publishes_valid_messages_as_the_contract_says(
    amqp_url: str, names: Names, bind: Bind, channel: BlockingChannel
) -> None:
    queue = bind("customer", names.exchange(Exchange.CUSTOMER_IN))
    result = _invoke(
        "inject", "--amqp-url", amqp_url, "--prefix", names.prefix, "--count", "30",
        "--customers", "1001,1002", "--mix", MIX, "--seed", "11",
    )  # fmt: skip
    taken = take_all(channel, queue)
    assert len(taken) == 30
    types: Counter[str] = Counter()
    for routing_key, props, body in taken:
        message = valid(body).message
        assert message is not None and message.header.sender_system == "webSesam"
        header, name = message.header, type(message).__name__
        assert routing_key == f"{header.customer_number}.{name}"
        assert props.message_id == header.message_id
        assert props.correlation_id == header.correlation_id
        assert props.type == name
        assert props.content_type == "application/xml"
        assert props.delivery_mode == 2
        assert props.timestamp == int(header.sent_at.timestamp())
        assert props.headers == {"x-schema-version": "1.0"}
        types[name] += 1
    assert set(types) <= {"CustomerOrder", "WorkOrder", "FaultReport", "PickupOrder"}
    assert types["CustomerOrder"] > 10
    assert "seed 11" in result.output and "total" in result.output
    # The seed decides the content: the same ids as the generator makes offline.
    weights = {"CustomerOrder": 70.0, "WorkOrder": 10.0, "FaultReport": 10.0, "PickupOrder": 10.0}
    offline = [x.header.message_id for x in Generator(11, customers=("1001", "1002")).mix(30, weights)]
    assert [props.message_id for _, props, _ in taken] == offline


@services
def test_inject_json_says_what_was_sent(amqp_url: str, names: Names, bind: Bind, channel: BlockingChannel) -> None:
    queue = bind("customer", names.exchange(Exchange.CUSTOMER_IN))
    result = _invoke(
        "inject", "--amqp-url", amqp_url, "--prefix", names.prefix, "--count", "5", "--seed", "3", "--json"
    )
    report = json.loads(result.stdout)
    assert (report["seed"], report["total"]) == (3, 5)
    assert sum(t["messages"] for t in report["sent"]) == len(take_all(channel, queue)) == 5


@services
def test_inject_writes_each_customer_s_configured_schema_version_or_the_one_asked_for(
    amqp_url: str, names: Names, bind: Bind, channel: BlockingChannel
) -> None:
    """A test environment injects 1.1 orders: a customer configured for 1.1 (HMC_CUSTOMERS' fifth field, as the
    worker reads it) writes 1.1 with its elements filled in, one on 1.0 writes 1.0; --schema-version: all."""
    queue = bind("customer", names.exchange(Exchange.CUSTOMER_IN))
    inject = ("inject", "--amqp-url", amqp_url, "--prefix", names.prefix, "--mix", "CustomerOrder=1", "--json")
    configured = {"HMC_CUSTOMERS": "1001:Region Skåne:websesam-skane:invoice:1.1,1002:Region Halland", "HMC_CONFIG": ""}
    result = runner.invoke(app, [*inject, "--count", "20", "--customers", "1001,1002"], env=configured)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["schema_versions"] == {"1001": "1.1", "1002": "1.0"}
    orders = [(props, valid(body).message) for _, props, body in take_all(channel, queue)]
    by_version = {
        v: [x for p, x in orders if isinstance(x, m.CustomerOrder) and p.headers == {"x-schema-version": v}]
        for v in ("1.0", "1.1")
    }
    assert len(by_version["1.0"]) + len(by_version["1.1"]) == 20 and by_version["1.0"] and by_version["1.1"]
    assert all(x.header.customer_number == "1001" and x.header.schema_version == "1.1" for x in by_version["1.1"])
    assert all(x.prescriber.prescriber_code and x.prescriber.profession for x in by_version["1.1"])
    assert all(x.header.schema_version == "1.0" and x.prescriber.prescriber_code is None for x in by_version["1.0"])
    result = runner.invoke(app, [*inject, "--count", "5", "--customers", "1002", "--schema-version", "1.1"])
    assert result.exit_code == 0, result.output
    again = [valid(body).message for _, _, body in take_all(channel, queue)]
    assert len(again) == 5 and all(x is not None and x.header.schema_version == "1.1" for x in again)
    refused = runner.invoke(app, [*inject, "--count", "1", "--schema-version", "2.0"])
    assert refused.exit_code == 2 and "2.0" in refused.output


@services
def test_inject_a_scenario_sends_both_sides(amqp_url: str, names: Names, bind: Bind, channel: BlockingChannel) -> None:
    customer_queue = bind("customer", names.exchange(Exchange.CUSTOMER_IN))
    sesam2_queue = bind("sesam2", names.exchange(Exchange.SESAM2_IN))
    _invoke(
        "inject", "--amqp-url", amqp_url, "--prefix", names.prefix,
        "--scenario", "order-delay-delivery", "--count", "2", "--customers", "1001,1002",
    )  # fmt: skip
    from_customers = [(key, valid(body).message) for key, _, body in take_all(channel, customer_queue)]
    from_sesam2 = [(key, props, valid(body)) for key, props, body in take_all(channel, sesam2_queue)]
    assert [key for key, _ in from_customers] == [
        "1001.CustomerOrder", "1001.OrderStatusQuery", "1002.CustomerOrder", "1002.OrderStatusQuery",
    ]  # fmt: skip
    assert [key for key, _, _ in from_sesam2] == ["OrderConfirmation", "DeliveryDelay", "DeliveryReceipt"] * 2
    orders = [x for _, x in from_customers if isinstance(x, m.CustomerOrder)]
    for i, (_, props, parsed) in enumerate(from_sesam2):
        assert parsed.dialect is SESAM2 and parsed.message is not None
        assert props.correlation_id == parsed.message.header.correlation_id == orders[i // 3].order_id


def _publish_orders(channel: BlockingChannel, names: Names, orders: list[m.CustomerOrder]) -> list[m.Message]:
    """As the broker does: the translated order to hmc.sesam2.out, which routes it to sesam2.in."""
    translated = [forward(order) for order in orders]
    for t in translated:
        props = pika.BasicProperties(
            message_id=t.header.message_id,
            correlation_id=t.header.correlation_id,
            type="CustomerOrder",
            content_type="application/xml",
            delivery_mode=2,
            headers={"x-schema-version": "1.0"},
        )
        channel.basic_publish(
            names.exchange(Exchange.SESAM2_OUT), "CustomerOrder", SESAM2.render(t), props, mandatory=True
        )
    return translated


@services
def test_simulate_sesam2_json_is_its_summary_alone(amqp_url: str, names: Names, channel: BlockingChannel) -> None:
    channel.confirm_delivery()
    _publish_orders(channel, names, [Generator(23, customers=("1001",)).customer_order(variant="patient")])
    summary = json.loads(_simulate(amqp_url, names, "--count", "1", "--duration", "20", "--json").stdout)
    assert summary["received"] == {"CustomerOrder": 1} and summary["answers"] == {
        "OrderConfirmation": 1,
        "DeliveryReceipt": 1,
    }
    assert summary["interrupted"] is False and summary["invalid"] == 0


def _simulate(amqp_url: str, names: Names, *args: str) -> Any:
    # Every order confirmed and delivered: two answers each, so counts can be checked exactly.
    behaviour = ("--confirm", "1", "--cancel", "0", "--delay", "0", "--receipt", "1")
    return _invoke("simulate-sesam2", "--amqp-url", amqp_url, "--prefix", names.prefix, *behaviour, *args)


def _state(channel: BlockingChannel, queue: str) -> tuple[int, int]:
    ok = channel.queue_declare(queue, passive=True).method
    return ok.message_count, ok.consumer_count


@services
def test_simulate_sesam2_answers_correlated_and_acks_only_what_it_answered(
    amqp_url: str, names: Names, bind: Bind, channel: BlockingChannel
) -> None:
    answers_queue = bind("sesam2", names.exchange(Exchange.SESAM2_IN))
    channel.confirm_delivery()
    g = Generator(21, customers=("1001", "1002"))
    sent = _publish_orders(channel, names, [g.customer_order(variant="patient") for _ in range(5)])
    result = _simulate(amqp_url, names, "--count", "3", "--duration", "20")
    answers = take_all(channel, answers_queue)
    assert len(answers) == 6
    by_id = {x.header.message_id: x for x in sent}
    for routing_key, props, body in answers:
        parsed = valid(body)
        assert parsed.dialect is SESAM2 and parsed.message is not None
        answer, name = parsed.message, type(parsed.message).__name__
        assert routing_key == props.type == name
        assert name in ("OrderConfirmation", "DeliveryReceipt")
        order = by_id[answer.header.causation_id or ""]
        assert answer.header.message_id == props.message_id == derived_id(order.header.message_id, f"sesam2/{name}")
        assert answer.header.correlation_id == props.correlation_id == order.header.correlation_id
        assert answer.header.customer_number == order.header.customer_number
        assert (props.content_type, props.delivery_mode, props.headers) == (
            "application/xml",
            2,
            {"x-schema-version": "1.0"},
        )
    assert _state(channel, names.sesam2_queue)[0] == 2  # the two not answered were handed back, not lost
    assert "answered 3 message(s) with 6 answer(s)" in result.output


@services
def test_simulate_sesam2_consumes_nothing_during_an_outage(
    amqp_url: str, names: Names, bind: Bind, channel: BlockingChannel
) -> None:
    answers_queue = bind("sesam2", names.exchange(Exchange.SESAM2_IN))
    channel.confirm_delivery()
    g = Generator(22, customers=("1001",))
    _publish_orders(channel, names, [g.customer_order(variant="patient") for _ in range(2)])
    later = [g.customer_order(variant="patient") for _ in range(2)]
    seen: dict[str, tuple[int, int]] = {}
    problems: list[BaseException] = []

    def watch() -> None:
        """From outside: wait for the outage, publish into it, and look at sesam2.in meanwhile."""
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        try:
            ch = connection.channel()
            ch.confirm_delivery()

            def wait_for(condition: Callable[[tuple[int, int]], bool], what: str) -> None:
                deadline = time.monotonic() + 10
                while not condition(state := _state(ch, names.sesam2_queue)):
                    assert time.monotonic() < deadline, f"timed out waiting for {what}; last {state}"
                    time.sleep(0.05)

            wait_for(lambda s: s == (0, 1), "the first two answered")
            wait_for(lambda s: s[1] == 0, "the outage")
            _publish_orders(ch, names, later)
            time.sleep(0.8)
            seen["during"] = _state(ch, names.sesam2_queue)
            wait_for(lambda s: s[0] == 0, "the end of the outage")
        except BaseException as e:
            problems.append(e)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = _simulate(amqp_url, names, "--count", "4", "--duration", "20", "--outage", "1.5:3.5")
    watcher.join(timeout=20)
    assert not problems, problems
    assert seen["during"] == (2, 0)  # published during the outage: waiting, with no consumer
    assert len(take_all(channel, answers_queue)) == 8
    assert "outages 1" in result.output


def test_wire_properties_are_the_contract_s() -> None:
    order = Generator(3).customer_order()
    props = wire.properties(order, user_id="websesam-skane")
    assert (props.message_id, props.correlation_id, props.type) == (
        order.header.message_id,
        order.order_id,
        "CustomerOrder",
    )
    assert (props.content_type, props.delivery_mode, props.headers) == (
        "application/xml",
        2,
        {"x-schema-version": "1.0"},
    )
    assert props.timestamp == int(order.header.sent_at.timestamp())
    assert props.user_id == "websesam-skane"


def test_bad_options_fail_before_connecting() -> None:
    result = runner.invoke(app, ["inject", "--mix", "Invoice=3", "--amqp-url", "amqp://nobody@127.0.0.1:1/"])
    assert result.exit_code == 2 and "unknown type(s) Invoice" in result.output
    result = runner.invoke(app, ["simulate-sesam2", "--outage", "5:1", "--amqp-url", "amqp://nobody@127.0.0.1:1/"])
    assert result.exit_code == 2 and "START must be 0 or more and before END" in result.output
    result = runner.invoke(app, ["inject", "--scenario", "nope", "--amqp-url", "amqp://nobody@127.0.0.1:1/"])
    assert result.exit_code == 2 and "shipped scenario" in result.output
    result = runner.invoke(app, ["inject", "--scenario", "pickup-return", "--mix", "WorkOrder=1"])
    assert result.exit_code == 2 and "--mix does not apply to --scenario" in result.output


@services
def test_inject_without_a_topology_says_what_to_do(amqp_url: str) -> None:
    result = runner.invoke(app, ["inject", "--amqp-url", amqp_url, "--prefix", "th-missing.", "--count", "1"])
    assert result.exit_code == 2
    assert "hmc-broker topology" in result.output


def test_the_scenarios_command_lists_the_shipped_ones() -> None:
    result = _invoke("scenarios")
    for name in ("order-delay-delivery", "pickup-return", "fault-report-answer", "buffer-replenishment"):
        assert name in result.output
