"""`hmc-broker topology --delete`: a prefix's names go, but never a message without --force."""

from __future__ import annotations

import json
from uuid import uuid4

import pika
import pytest
from typer.testing import CliRunner

from broker.cli import app

pytestmark = pytest.mark.services


def _exists(url: str, queue: str) -> bool:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker:
        return False
    finally:
        if connection.is_open:
            connection.close()


def test_delete_keeps_queues_with_messages_until_forced(amqp_url: str) -> None:
    prefix = f"t{uuid4().hex[:8]}."
    env = {"HMC_AMQP_URL": amqp_url, "HMC_PREFIX": prefix}
    runner = CliRunner()
    assert runner.invoke(app, ["topology"], env=env).exit_code == 0
    assert _exists(amqp_url, f"{prefix}hmc.dead-letter")
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    connection.channel().basic_publish("", f"{prefix}sesam2.in", b"<x/>")
    connection.close()

    kept = runner.invoke(app, ["topology", "--delete"], env=env)
    assert kept.exit_code == 1 and f"{prefix}sesam2.in" in kept.output
    assert _exists(amqp_url, f"{prefix}sesam2.in"), "a queue that holds a message is kept"
    assert not _exists(amqp_url, f"{prefix}hmc.dead-letter"), "the empty ones are gone"

    forced = runner.invoke(app, ["topology", "--delete", "--force", "--json"], env=env)
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.stdout) == {"deleted": True, "kept": [], "prefix": prefix}
    assert not _exists(amqp_url, f"{prefix}sesam2.in")


def test_the_unprefixed_names_are_not_deleted_without_force(amqp_url: str) -> None:
    refused = CliRunner().invoke(app, ["topology", "--delete"], env={"HMC_AMQP_URL": amqp_url, "HMC_PREFIX": ""})
    assert refused.exit_code == 2 and "refusing" in refused.output
