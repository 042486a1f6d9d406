"""The two baselines, each run as a process of its own (as the broker's worker is), so that none of them
shares an interpreter with the bench that measures it.

raw: a plain pika consumer that takes a persistent message from one queue, republishes it persistently
     to another with publisher confirms handled asynchronously (a window of unconfirmed publishes), and
     acknowledges the original when its copy is confirmed. No validation, no store: the ceiling of a
     Python AMQP loop on this machine.
naive: what a team writes by hand: a pika blocking consumer that, per message, parses and validates with
     lxml (the customer XSD), inserts a row and commits (psycopg), publishes with a blocking confirm, and
     acknowledges.

    python -m adapters.bench.relays raw '{"url": ..., "source": ..., "target": ..., "window": 200}'
    python -m adapters.bench.relays naive '{"url": ..., "source": ..., "target": ..., "db": ..., "prefetch": 100}'

Both run until SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
from collections import OrderedDict
from typing import Any

import pika

from adapters.bench.wire import EXIT_CONNECTION_LOST


class RawRelay:
    def __init__(self, url: str, source: str, target: str, window: int) -> None:
        self.source, self.target, self.window = source, target, window
        self._pending: OrderedDict[int, int] = OrderedDict()  # publish sequence number -> delivery tag taken
        self._published = 0
        self.lost = False  # the connection failed or was closed by the server
        self._channel: Any = None
        self._connection = pika.SelectConnection(
            pika.URLParameters(url),
            on_open_callback=lambda c: c.channel(on_open_callback=self._open),
            on_open_error_callback=lambda _c, e: self._exit(f"cannot connect: {e}"),
            on_close_callback=lambda _c, e: self._exit(f"connection closed: {e}"),
        )

    def run(self) -> None:
        ioloop = self._connection.ioloop
        signal.signal(signal.SIGTERM, lambda *_: ioloop.add_callback_threadsafe(ioloop.stop))
        ioloop.start()

    def _exit(self, reason: str) -> None:
        print(f"raw relay: {reason}", file=sys.stderr)
        self.lost = True
        self._connection.ioloop.stop()

    def _open(self, channel: Any) -> None:
        self._channel = channel
        channel.confirm_delivery(self._confirmed, callback=lambda _f: self._qos())

    def _qos(self) -> None:
        # The prefetch is the window: at most `window` messages taken and not yet acknowledged.
        self._channel.basic_qos(prefetch_count=self.window, callback=lambda _f: self._consume())

    def _consume(self) -> None:
        self._channel.basic_consume(self.source, self._message)

    def _message(self, channel: Any, method: Any, props: Any, body: bytes) -> None:
        self._published += 1  # confirms number publishes from 1 on a channel in confirm mode
        self._pending[self._published] = method.delivery_tag
        channel.basic_publish("", self.target, body, props)

    def _confirmed(self, frame: Any) -> None:
        method = frame.method
        ok = isinstance(method, pika.spec.Basic.Ack)
        if method.multiple:
            taken = []
            while self._pending and next(iter(self._pending)) <= method.delivery_tag:
                taken.append(self._pending.popitem(last=False)[1])
            if not taken:
                return
            # Publishes and deliveries go in the same order, so every delivery up to the last one taken
            # here that is still unacknowledged has its copy confirmed: one ack covers them all.
            if ok:
                self._channel.basic_ack(taken[-1], multiple=True)
            else:
                self._channel.basic_nack(taken[-1], multiple=True, requeue=True)
            return
        tag = self._pending.pop(method.delivery_tag, None)
        if tag is None:
            return
        if ok:
            self._channel.basic_ack(tag)
        else:
            self._channel.basic_nack(tag, requeue=True)


class NaiveRelay:
    def __init__(self, url: str, source: str, target: str, db: str, prefetch: int) -> None:
        import psycopg
        from lxml import etree

        from broker.contract.dialect import DIALECTS
        from broker.model.codes import Side

        self.source, self.target = source, target
        self._stop = False
        self._parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        self._schema = etree.XMLSchema(etree.parse(str(DIALECTS[Side.CUSTOMER].schema_path), self._parser))
        self._db = psycopg.connect(db)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS bench_naive (id bigserial PRIMARY KEY, message_id text NOT NULL UNIQUE,"
            " received_at timestamptz NOT NULL DEFAULT now(), valid boolean NOT NULL, body bytea NOT NULL)"
        )
        self._db.commit()
        params = pika.URLParameters(url)
        params.heartbeat = 0
        self._connection = pika.BlockingConnection(params)
        self._consume = self._connection.channel()
        self._consume.basic_qos(prefetch_count=prefetch)
        self._publish = self._connection.channel()
        self._publish.confirm_delivery()  # every basic_publish now waits for its confirm

    def run(self) -> None:
        from lxml import etree

        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        for method, props, body in self._consume.consume(self.source, inactivity_timeout=0.2):
            if self._stop:
                break
            if method is None:
                continue
            try:
                valid = self._schema.validate(etree.fromstring(body, self._parser))
            except etree.XMLSyntaxError:
                valid = False
            self._db.execute(
                "INSERT INTO bench_naive (message_id, valid, body) VALUES (%s, %s, %s)",
                (props.message_id, valid, body),
            )
            self._db.commit()
            self._publish.basic_publish("", self.target, body, props, mandatory=True)
            self._consume.basic_ack(method.delivery_tag)
        self._connection.close()
        self._db.close()


def main(argv: list[str]) -> None:
    kind, config = argv[0], json.loads(argv[1])
    if kind == "raw":
        raw = RawRelay(config["url"], config["source"], config["target"], int(config["window"]))
        raw.run()
        if raw.lost:
            raise SystemExit(EXIT_CONNECTION_LOST)
    elif kind == "naive":
        try:
            NaiveRelay(config["url"], config["source"], config["target"], config["db"], int(config["prefetch"])).run()
        except pika.exceptions.AMQPError as e:
            print(f"naive relay: {e!r}", file=sys.stderr)
            raise SystemExit(EXIT_CONNECTION_LOST) from e
    else:
        raise SystemExit(f"unknown relay {kind!r}: raw or naive")


if __name__ == "__main__":
    main(sys.argv[1:])
