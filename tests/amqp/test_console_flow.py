"""The console's Flow on the real RabbitMQ: each partner's queue depth and consumers, and the workers
consuming the broker's input queues, read as `hmc-broker status` reads them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pika

from adapters.amqp.topology import Names, TopologySettings
from broker.bootstrap import store as open_store
from broker.config import Customer, Settings
from broker.model.codes import Side
from console.accounts import VIEWER, Identity
from console.cli import build
from console.operations import flow


def test_flow_shows_partner_queues_and_whether_workers_consume(
    amqp_url: str, topology: Callable[..., TopologySettings], tmp_path: Path
) -> None:
    declared = topology(customers=("1001",))
    settings = Settings(
        amqp_url=amqp_url,
        db_url=f"sqlite:///{tmp_path / 'store.sqlite'}",
        prefix=declared.prefix,
        customers=(Customer("1001", "Region Skåne"),),
    )
    console = build(settings, open_store(settings))
    names = Names(declared.prefix)
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for _ in range(2):  # waiting for SESAM2, which is not consuming
            channel.basic_publish("", names.sesam2_queue, b"<x/>")
        viewer = Identity("vera", frozenset({VIEWER}))
        before = flow(console.sessions, settings, viewer, "hour", console.partners, console.workers, console.counts)
        sesam2 = next(p for p in before["partners"] if p["partner"] == "sesam2")
        assert (sesam2["queue"], sesam2["messages"], sesam2["consumers"]) == (names.sesam2_queue, 2, 0)
        assert {w["queue"] for w in before["workers"]} == set(
            names.inbound_queues(Side.CUSTOMER, 1) + names.inbound_queues(Side.SESAM2, 1)
        )
        assert all(w["consumers"] == 0 for w in before["workers"])
        (inbound,) = names.inbound_queues(Side.CUSTOMER, 1)
        channel.basic_consume(inbound, lambda *_args: None)  # a worker, as far as RabbitMQ can tell
        after = flow(console.sessions, settings, viewer, "hour", console.partners, console.workers, console.counts)
        assert {w["queue"]: w["consumers"] for w in after["workers"]}[inbound] == 1
    finally:
        connection.close()
