"""What the worker publishes on hmc.events matches the events' JSON Schema of the contract
(adapters/contract/events.py, schemas/events/v1/events.schema.json): a forwarded and a rejected message."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import jsonschema

from adapters.contract import events
from broker.bootstrap import store as open_store
from broker.config import Customer, Settings
from broker.envelope import Delivery, Exchange
from broker.model.codes import Side
from broker.runtime import Worker
from tests.support.fakes import FakeTransport, Taken
from tests.support.fixtures import Store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures/customer"


def test_processing_events_match_the_events_schema(store: Store) -> None:
    settings = Settings(db_url=store.url, customers=(Customer("1002"),))
    transport = FakeTransport()
    worker = Worker(settings, transport, open_store(settings))
    valid = (FIXTURES / "valid/CustomerOrder-patient-urgent.xml").read_bytes()
    broken = re.sub(rb"<MessageId>[^<]+", b"<MessageId>" + str(uuid.uuid4()).encode(), valid, count=1)
    broken = broken.replace(b"<Priority>", b"<Priority>no-such-priority", 1)  # a Rejection, and its event
    worker.process(
        [
            Taken(Delivery(side=Side.CUSTOMER, body=body, routing_key="1002.CustomerOrder"), transport.acked)
            for body in (valid, broken)
        ]
    )
    tapped = [o for o in transport.published if o.exchange is Exchange.EVENTS]
    assert [o.message_type for o in tapped] == ["ProcessingEvent", "ProcessingEvent"]
    schema = events.events_schema()
    for outgoing in tapped:
        body = json.loads(outgoing.body)
        jsonschema.validate(body, schema)
        assert body.keys() == events.PROCESSING_EVENT["properties"].keys()
    assert sorted(json.loads(o.body)["status"] for o in tapped) == ["forwarded", "rejected"]
