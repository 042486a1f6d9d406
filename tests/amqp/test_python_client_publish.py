"""The Python client's publishing on the real RabbitMQ: every property the contract asks for, mandatory
(an unroutable message is an error), and a republish under the same message_id when the channel is lost."""

from __future__ import annotations

import threading
from pathlib import Path

import pika
import pytest
from hmc_client import HmcClient, Role, Unroutable

from tests.support.amqp import take

ORDER = Path(__file__).resolve().parents[1] / "fixtures/customer/valid/CustomerOrder-unit-minimal.xml"
CUSTOMER = "2040"


def test_a_published_message_carries_every_property(amqp_url: str, prefix: str, topology) -> None:  # type: ignore[no-untyped-def]
    topology()
    channel = pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()
    queue = f"{prefix}hmc.broker.customer-in.0"
    with HmcClient(amqp_url, Role.customer(CUSTOMER), prefix=prefix) as client:
        sent = client.publish(ORDER.read_bytes(), reply_to="my-replies")
    [(props, body)] = take(channel, queue, 1, timeout=5)
    channel.connection.close()
    assert body == ORDER.read_bytes() and sent.attempts == 1
    assert sent.routing_key == f"{CUSTOMER}.CustomerOrder"
    assert (props.message_id, props.type, props.correlation_id) == (
        "7aaa2c2a-62cf-4ec6-962d-6db4aeaf9cfb",
        "CustomerOrder",
        "2040-88213",
    )
    assert props.user_id == "guest" and props.delivery_mode == 2 and props.timestamp
    assert props.content_type == "application/xml" and props.reply_to == "my-replies"
    assert props.headers == {"x-schema-version": "1.0"}


def test_an_unroutable_message_is_an_error(amqp_url: str, prefix: str, topology) -> None:  # type: ignore[no-untyped-def]
    topology()
    body = (ORDER.parents[2] / "sesam2/valid/OrderConfirmation-two-lines.xml").read_bytes()
    # An answer sent the wrong way, to hmc.sesam2.out: sesam2.in is bound only for the types SESAM2 receives.
    wrong_way = Role("sesam2", "brokerForwardsToSesam2", "sesam2Consumes")
    with (
        HmcClient(amqp_url, wrong_way, prefix=prefix) as client,
        pytest.raises(Unroutable, match="has no queue bound for 'OrderConfirmation'"),
    ):
        client.publish(body)


def test_a_lost_channel_republishes_under_the_same_id(amqp_url: str, prefix: str, topology) -> None:  # type: ignore[no-untyped-def]
    # The exchange does not exist yet: RabbitMQ closes the channel (404) until it is declared a moment later.
    declare_later = threading.Timer(0.3, topology)
    declare_later.start()
    with HmcClient(amqp_url, Role.customer(CUSTOMER), prefix=prefix, pause=0.4, attempts=5) as client:
        sent = client.publish(ORDER.read_bytes())
    declare_later.join()
    assert sent.attempts > 1
    channel = pika.BlockingConnection(pika.URLParameters(amqp_url)).channel()
    got = take(channel, f"{prefix}hmc.broker.customer-in.0", 2, timeout=2)
    channel.connection.close()
    assert [props.message_id for props, _ in got] == ["7aaa2c2a-62cf-4ec6-962d-6db4aeaf9cfb"]
