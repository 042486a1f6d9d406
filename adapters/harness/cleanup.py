"""Deleting what a run declared on RabbitMQ: the soak's queues and exchanges, and the fault tests' (which
import this, so that both delete the same way)."""

from __future__ import annotations

from adapters.amqp.topology import TopologySettings, plan
from adapters.harness import wire


def delete_topology(amqp_url: str, settings: TopologySettings) -> None:
    """The queues and exchanges that the topology of `settings` declares (its prefix only)."""
    topology = plan(settings)
    connection = wire.blocking(amqp_url)
    try:
        channel = connection.channel()
        for queue in sorted(q.name for q in topology.queues):
            channel.queue_delete(queue)
        for exchange in sorted(e.name for e in topology.exchanges):
            channel.exchange_delete(exchange)
    finally:
        connection.close()
