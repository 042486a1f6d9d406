"""The AsyncAPI document is generated from the topology, the routing table and the mapping: it must match
the committed copies, name every exchange, queue and message type, and hold together (every $ref resolves,
every operation's messages are on its channel). `asyncapi validate` checks it too (tests/e2e/test_asyncapi_cli.py)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
import yaml
from typer.testing import CliRunner

from adapters.amqp.topology import TopologySettings, plan
from adapters.contract import asyncapi, events
from adapters.contract.generate import ASYNCAPI_JSON, ASYNCAPI_YAML, generated_files
from broker import runtime
from broker.cli import app
from broker.contract import routing
from broker.contract.dialect import DIALECTS, SOURCE_SCHEMA_DIR
from broker.model.codes import Direction
from broker.observability.watch import Level, Transition

DOC = asyncapi.document()


@pytest.mark.parametrize("name", sorted(generated_files()))
def test_committed_contract_files_match_the_code(name: str) -> None:
    committed = (SOURCE_SCHEMA_DIR / name).read_bytes()
    assert committed == generated_files()[name], f"schemas/{name} is stale: run python -m adapters.contract.generate"


def test_yaml_and_json_say_the_same() -> None:
    files = generated_files()
    assert yaml.safe_load(files[ASYNCAPI_YAML]) == json.loads(files[ASYNCAPI_JSON]) == DOC


def test_every_exchange_and_queue_is_a_channel_with_its_amqp_binding() -> None:
    topology = plan(TopologySettings(customers=("{customerNumber}",), invoice_customers=("{customerNumber}",)))
    addresses = {c["address"]: c for c in DOC["channels"].values()}
    for exchange in topology.exchanges:
        binding = addresses[exchange.name]["bindings"]["amqp"]
        assert binding["is"] == "routingKey" and binding["exchange"]["durable"] is True
        assert addresses[exchange.name]["x-exchange-type"] == exchange.type
    for queue in topology.queues:
        name = queue.name.replace(".0", ".{partition}") if ".broker." in queue.name else queue.name
        channel = addresses[name]
        assert channel["bindings"]["amqp"]["queue"]["durable"] is True
        assert channel["x-queue-arguments"] == queue.queue_arguments
        assert channel["x-single-active-consumer"] is (".broker." in queue.name)


def test_every_message_type_of_both_dialects_is_described_with_its_envelope() -> None:
    messages = DOC["components"]["messages"]
    for side, dialect in DIALECTS.items():
        for cls in dialect.binding.by_type:
            message = messages[f"{side}.{cls.__name__}"]
            assert message["bindings"]["amqp"]["messageType"] == cls.__name__
            xsds = message["payload"]["x-xsd"]
            assert [x["schemaVersion"] for x in xsds] == list(dialect.versions), "every schema version, none made up"
            assert all((SOURCE_SCHEMA_DIR / x["schema"]).is_file() for x in xsds)
        trait = DOC["components"]["messageTraits"][f"{side}Envelope"]
        assert trait["headers"]["properties"]["x-schema-version"]["enum"] == list(dialect.versions)
        assert {"message_id", "correlation_id", "type", "user_id"} <= set(trait["x-amqp-properties"])


def test_every_routed_type_is_sent_and_received_by_someone() -> None:
    sent: set[str] = set()
    received: set[str] = set()
    for op in DOC["operations"].values():
        names = {ref["$ref"].rsplit("/", 1)[1] for ref in op["messages"]}
        (sent if op["action"] == "send" else received).update(names)
    for cls, route in routing.ROUTES.items():
        side = "customer" if cls.direction is Direction.INBOUND or route.target is not routing.Target.SESAM2 else ""
        assert f"customer.{cls.__name__}" in sent | received or side == "", cls
    for name in ("customer.Rejection", "customer.OrderStatusReply", "events.ProcessingEvent", "events.PartnerOutage"):
        assert name in sent and name in received, name


def test_rejections_and_status_replies_are_replies_on_reply_to() -> None:
    query = DOC["operations"]["customerSystemQueriesStatus"]
    replies = {ref["$ref"].rsplit("/", 1)[1] for ref in query["reply"]["messages"]}
    assert replies == {"customer.OrderStatusReply", "customer.Rejection"}
    assert query["reply"]["channel"] == {"$ref": "#/channels/reply-to"}


def _resolve(pointer: str) -> Any:
    node: Any = DOC
    for step in pointer.removeprefix("#/").split("/"):
        node = node[step]
    return node


def test_every_reference_resolves_and_operations_use_their_channels_messages() -> None:
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            refs.extend([node["$ref"]] if "$ref" in node else [])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(DOC)
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        _resolve(ref)
    for op_id, op in DOC["operations"].items():
        channel = op["channel"]["$ref"]
        assert all(ref["$ref"].startswith(channel + "/messages/") for ref in op["messages"]), op_id


def test_outage_events_match_the_events_schema() -> None:
    schema = events.events_schema()
    for level in Level:
        # the runtime's own builder of the event (private, but it is exactly what goes out)
        outgoing = runtime._outage_event(Transition("sesam2", level, Level.UP, 12.4))
        jsonschema.validate(json.loads(outgoing.body), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"partner": "sesam2", "level": "sideways", "previous": "up", "outage_s": 1}, schema)


def test_contract_command_prints_the_document_and_writes_the_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    printed = CliRunner().invoke(app, ["contract", "--format", "json"])
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.output) == DOC
    written = CliRunner().invoke(app, ["contract", "--out", str(tmp_path)])
    assert written.exit_code == 0, written.output
    assert {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()} == set(generated_files())
