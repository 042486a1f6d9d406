"""Reading the broker's queues with pika, as a customer system or SESAM2 would (test_runtime.py,
test_scenarios_e2e.py)."""

from __future__ import annotations

import time

import pika
from pika.adapters.blocking_connection import BlockingChannel


def take(
    channel: BlockingChannel, queue: str, count: int, timeout: float = 30.0
) -> list[tuple[pika.BasicProperties, bytes]]:
    """Up to `count` messages from `queue` (properties, body), in order; fewer when `timeout` runs out first."""
    got: list[tuple[pika.BasicProperties, bytes]] = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        method, props, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        got.append((props, body))
    return got


def nothing_more(channel: BlockingChannel, queue: str, wait: float = 0.5) -> bool:
    """True when `queue` is still empty after `wait` seconds."""
    time.sleep(wait)
    return channel.queue_declare(queue, passive=True).method.message_count == 0
