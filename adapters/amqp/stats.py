"""Queue depth and consumers, read with passive declares (no management plugin needed)."""

from __future__ import annotations

from kombu.connection import Connection


def queue_counts(connection: Connection, queues: list[str]) -> dict[str, tuple[int, int] | None]:
    """(messages, consumers) per queue; None for a queue that does not exist."""
    out: dict[str, tuple[int, int] | None] = {}
    channel = connection.channel()
    try:
        for name in queues:
            try:
                _, messages, consumers = channel.queue_declare(queue=name, passive=True)
                out[name] = (int(messages), int(consumers))
            except connection.channel_errors:
                out[name] = None  # 404: the channel is closed by the server; open a new one
                channel = connection.channel()
    finally:
        channel.close()
    return out
