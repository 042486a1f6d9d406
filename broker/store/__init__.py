"""The message store: the source of truth. Queues are only transport."""
