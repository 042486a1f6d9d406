"""Helpers of the harness tests: draining a queue with pika, and reading a body back as valid."""

from __future__ import annotations

import pika
from pika.adapters.blocking_connection import BlockingChannel

from broker.contract.dialect import Parsed, read


def take_all(channel: BlockingChannel, queue: str) -> list[tuple[str, pika.BasicProperties, bytes]]:
    """Everything in `queue`: (routing key, properties, body), in order."""
    taken: list[tuple[str, pika.BasicProperties, bytes]] = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            return taken
        taken.append((method.routing_key, properties, body))


def valid(body: bytes) -> Parsed:
    """The body read back; fails the test with every problem when it is not valid."""
    parsed = read(body)
    assert parsed.ok, parsed.problems
    return parsed
