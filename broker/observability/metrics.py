"""Every Prometheus metric of the broker, defined in one place (compose/ alerts and dashboards use these).

Names follow Prometheus conventions: hmc_ prefix, _total for counters, base units (seconds).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "hmc_messages_total",
    "Messages processed, by direction (inbound: from customers, outbound: from SESAM2), type and outcome",
    ["direction", "type", "outcome"],
)
PROCESSING_SECONDS = Histogram(
    "hmc_processing_seconds",
    "Time from taking a batch to acknowledging it, per message",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram("hmc_batch_messages", "Messages per batch", buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500))
PUBLISHED = Counter("hmc_published_total", "Messages published with a confirm, by exchange", ["exchange"])
PUBLISH_FAILURES = Counter("hmc_publish_failures_total", "Publishes nacked, unroutable or unconfirmed", ["reason"])
OUTBOX_BACKLOG = Gauge("hmc_outbox_backlog", "Outbox rows waiting to be published")
PARKED = Gauge("hmc_parked_messages", "Messages parked for replay (publish attempts exhausted or unroutable)")
REJECTED_LAST_HOUR = Gauge("hmc_rejected_messages_last_hour", "Messages rejected in the last hour")
QUEUE_DEPTH = Gauge("hmc_queue_messages", "Messages waiting in a queue", ["queue"])
QUEUE_CONSUMERS = Gauge("hmc_queue_consumers", "Consumers attached to a queue", ["queue"])
OLDEST_AGE = Gauge(
    "hmc_oldest_message_age_seconds", "Age of the oldest message not yet consumed from a queue", ["queue"]
)
# RabbitMQ keeps no head-message timestamp for quorum queues (rabbitmq-server issue #6813), so the age of what
# waits in the broker's own queues is measured where it is taken: how long the oldest message of the worker's
# latest batch had waited since its publisher stamped it (1 s resolution), 0 while the worker is idle.
INBOUND_WAIT = Gauge(
    "hmc_inbound_wait_seconds",
    "How long the oldest message of the worker's latest batch had waited in its queue (0 when idle)",
    ["side"],
)
PARTNER_UP = Gauge(
    "hmc_partner_available", "1 while the partner consumes its queue (SESAM2 or a customer system), else 0", ["partner"]
)
OUTAGE_SECONDS = Gauge(
    "hmc_partner_outage_seconds", "How long the partner has not been consuming, 0 when up", ["partner"]
)
RESERVE_ROUTINE = Gauge(
    "hmc_reserve_routine_active",
    "1 when the partner has been unavailable past the reserve-routine threshold (4 h: paper routine)",
    ["partner"],
)
WORKER_PROGRESS = Gauge(
    "hmc_worker_last_progress_timestamp_seconds",
    "When the worker's loop last went round (a batch handled, or an idle look for work): stalls stop it",
)
STORE_AVAILABLE = Gauge("hmc_store_available", "1 while the worker's last look at its store succeeded, else 0")
AMQP_BLOCKED = Gauge(
    "hmc_amqp_blocked",
    "1 while RabbitMQ blocks the worker's publishing (a memory or disk alarm): it takes no new work, else 0",
)
# The gauge above can be 1 for less than a scrape (a blocked connection that RabbitMQ closes is replaced by one not
# yet told); the count of connection.blocked notices misses none.
AMQP_BLOCKS = Counter(
    "hmc_amqp_blocks_total", "times RabbitMQ told the worker's publisher connection.blocked (a memory or disk alarm)"
)
AMQP_AVAILABLE = Gauge("hmc_amqp_available", "1 while the worker's consuming connection to RabbitMQ is open, else 0")
# Counted in the process that replays (the CLI): seen by Prometheus only through a pushgateway. The workers
# export the store's count of the last hour instead (REPLAYS_LAST_HOUR).
REPLAYS = Counter("hmc_replays_total", "Messages replayed by operators, by outcome", ["outcome"])
REPLAYS_LAST_HOUR = Gauge("hmc_replays_last_hour", "Operators' replays stored in the last hour (from the store)")
