"""The AsyncAPI 3.0 document of the AMQP contract, generated from the code that runs it.

Channels come from the topology plan (adapters/amqp/topology.py: every exchange and queue with its AMQP
0-9-1 binding and queue arguments), the messages on each from the dialects' bindings (the mapping table)
and the per-type routing table (broker/contract/routing.py), the schema versions from the dialects, the
events from adapters/contract/events.py. Only who does what (OPERATIONS below) and the envelope's rules
(AMQP_PROPERTIES) are written here. `hmc-broker contract` writes the document; schemas/asyncapi.yaml and
.json are the committed copies (a test fails when they differ from what this generates).

XSD is not a schema format AsyncAPI parsers know, so an XML payload is described as an AsyncAPI string
schema with `contentMediaType: application/xml` and an `x-xsd` extension naming the XSD (file, namespace,
root element) of every schema version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib.metadata import version as installed_version
from typing import Any

import yaml
from lxml import etree

from adapters.amqp.topology import SIDES, Names, Topology, TopologySettings, plan
from adapters.contract import events
from broker.contract import routing
from broker.contract.dialect import DIALECTS, XmlDialect
from broker.envelope import CONTENT_TYPE, SCHEMA_VERSION_HEADER, Exchange
from broker.model import messages as m
from broker.model.codes import Direction, Side

ASYNCAPI_VERSION = "3.0.0"
AMQP_BINDING_VERSION = "0.3.0"
CUSTOMER_PARAMETER = "{customerNumber}"
PARTITION_PARAMETER = "{partition}"
REPLY_CHANNEL = "reply-to"

# The AMQP properties every message carries (README "AMQP contract" points here).
AMQP_PROPERTIES: dict[str, str] = {
    "message_id": "required: the message's id, a UUID equal to the document header's message id; stable across "
    "redeliveries and replays: consumers de-duplicate on it, a publisher republishes under the same id",
    "correlation_id": "required: the order it is about (the customer's order, work-order, pickup or report id); "
    "keeps one order's messages in order across partitions",
    "type": "required: the message type (the root element's type name, e.g. CustomerOrder)",
    "user_id": "required from customer systems: the publisher's own RabbitMQ user, verified by RabbitMQ; the broker "
    "refuses a message whose user does not own the header's customer number (rule security.forged-customer)",
    "content_type": f"{CONTENT_TYPE} (UTF-8); application/json on hmc.events",
    "delivery_mode": "2 (persistent)",
    "timestamp": "when the message was created (seconds since the epoch)",
    "reply_to": "optional: a queue for the answer (OrderStatusReply, Rejection) instead of the customer's queue",
}
PUBLISH_BINDING = {"deliveryMode": 2, "mandatory": True, "timestamp": True, "bindingVersion": AMQP_BINDING_VERSION}
CONSUME_BINDING = {"ack": True, "bindingVersion": AMQP_BINDING_VERSION}


def messages_by_exchange() -> dict[Exchange, list[tuple[Side, type[m.Message]]]]:
    """Which message types travel on each exchange, in which dialect: from the bindings and the routing table."""
    customer, sesam2 = (list(DIALECTS[side].binding.by_type) for side in (Side.CUSTOMER, Side.SESAM2))

    def to_customer(cls: type[m.Message]) -> bool:
        found = routing.route(cls)  # no route: made by the broker itself (OrderStatusReply, Rejection)
        return found is None or found.target in (routing.Target.CUSTOMER, routing.Target.BROADCAST)

    return {
        Exchange.CUSTOMER_IN: [(Side.CUSTOMER, c) for c in customer if c.direction is Direction.INBOUND],
        Exchange.SESAM2_OUT: [(Side.SESAM2, c) for c in routing.routed_types(routing.Target.SESAM2) if c in sesam2],
        Exchange.SESAM2_IN: [(Side.SESAM2, c) for c in sesam2 if c.direction is Direction.OUTBOUND],
        Exchange.CUSTOMER_OUT: [
            (Side.CUSTOMER, c) for c in customer if c.direction is Direction.OUTBOUND and to_customer(c)
        ],
        Exchange.INVOICE: [(Side.CUSTOMER, c) for c in routing.routed_types(routing.Target.INVOICE)],
    }


@dataclass(frozen=True)
class Operation:
    """Who sends or receives what where; `channel` is an exchange or queue name without prefix."""

    id: str
    actor: str  # customer-system, sesam2, broker, monitoring
    action: str  # send / receive
    channel: str
    summary: str
    only: tuple[str, ...] = ()  # restrict to these message types (default: every message of the channel)
    leave_out: tuple[str, ...] = ()
    replies: tuple[str, ...] = ()  # answered on the reply_to queue with these types


_N = Names()
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "customerSystemPublishes",
        "customer-system",
        "send",
        _N.exchange(Exchange.CUSTOMER_IN),
        "A customer system publishes its messages, routing key <customerNumber>.<MessageType>, as its own user.",
        leave_out=("OrderStatusQuery",),
        replies=("Rejection",),
    ),
    Operation(
        "customerSystemQueriesStatus",
        "customer-system",
        "send",
        _N.exchange(Exchange.CUSTOMER_IN),
        "Where is my order: answered by the broker from its order view (reply_to, else the customer's queue).",
        only=("OrderStatusQuery",),
        replies=("OrderStatusReply", "Rejection"),
    ),
    Operation(
        "customerSystemConsumes",
        "customer-system",
        "receive",
        _N.customer_queue(CUSTOMER_PARAMETER),
        "A customer system consumes its own queue: answers, Rejections, broadcasts and SESAM2's queries.",
    ),
    Operation(
        "customerSystemConsumesInvoices",
        "customer-system",
        "receive",
        _N.invoice_queue(CUSTOMER_PARAMETER),
        "Invoice data, only for customers with invoice permission.",
    ),
    Operation("sesam2Consumes", "sesam2", "receive", _N.sesam2_queue, "SESAM2 consumes what customers send it."),
    Operation(
        "sesam2Publishes",
        "sesam2",
        "send",
        _N.exchange(Exchange.SESAM2_IN),
        "SESAM2 publishes its answers and its own messages, routing key <MessageType>.",
    ),
    Operation(
        "brokerConsumesCustomers",
        "broker",
        "receive",
        _N.inbound_queue(Side.CUSTOMER, PARTITION_PARAMETER),
        "The broker consumes customer messages: one worker at a time per partition (single active consumer).",
    ),
    Operation(
        "brokerConsumesSesam2",
        "broker",
        "receive",
        _N.inbound_queue(Side.SESAM2, PARTITION_PARAMETER),
        "The broker consumes SESAM2's messages: one worker at a time per partition (single active consumer).",
    ),
    Operation(
        "brokerForwardsToSesam2",
        "broker",
        "send",
        _N.exchange(Exchange.SESAM2_OUT),
        "Customer messages translated into the SESAM2 dialect, routing key <MessageType>.",
    ),
    Operation(
        "brokerForwardsToCustomers",
        "broker",
        "send",
        _N.exchange(Exchange.CUSTOMER_OUT),
        "SESAM2's messages translated into the customer dialect, Rejections and status replies, routing key "
        "<customerNumber>.<MessageType>; broadcasts once per customer system.",
    ),
    Operation(
        "brokerSendsInvoices",
        "broker",
        "send",
        _N.exchange(Exchange.INVOICE),
        "Invoice data, routing key <customerNumber>.",
    ),
    Operation(
        "brokerReplies",
        "broker",
        "send",
        REPLY_CHANNEL,
        "Answers to a message that named a reply_to queue (default exchange): OrderStatusReply, Rejection.",
    ),
    Operation(
        "brokerPublishesEvents",
        "broker",
        "send",
        _N.exchange(Exchange.EVENTS),
        "A wire tap of every message's processing, and partner outages (JSON, no payload, no patient data).",
    ),
    Operation(
        "monitoringConsumesEvents",
        "monitoring",
        "receive",
        _N.exchange(Exchange.EVENTS),
        "Monitoring binds a queue of its own to hmc.events (topic: <stage>.<outcome>, outage.<level>).",
    ),
)
ACTORS = {
    "customer-system": "A customer's ordering system (webSesam and its kind), one RabbitMQ user per system.",
    "sesam2": "The HMC business system SESAM2.",
    "broker": "HMC Broker's workers.",
    "monitoring": "Operators' monitoring.",
}


def channel_id(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", address).strip("-")


def message_id(side: Side | str, type_name: str) -> str:
    return f"{side}.{type_name}"


def document() -> dict[str, Any]:
    """The AsyncAPI document as plain data (dicts in a stable order)."""
    topology = plan(
        TopologySettings(customers=(CUSTOMER_PARAMETER,), invoice_customers=(CUSTOMER_PARAMETER,), partitions=2)
    )
    on_exchange = {
        _N.exchange(e): [message_id(s, c.__name__) for s, c in found] for e, found in messages_by_exchange().items()
    }
    on_exchange[_N.exchange(Exchange.EVENTS)] = [message_id("events", name) for name in events.EVENTS]
    # A partitioned queue stands for all its partitions; a hash exchange carries what its source exchange does.
    templated = {
        _N.inbound_queue(side, i): _N.inbound_queue(side, PARTITION_PARAMETER) for side in SIDES for i in range(2)
    }
    for b in topology.exchange_bindings:
        on_exchange[b.destination] = on_exchange[b.source]
    channels: dict[str, Any] = {}
    for exchange in topology.exchanges:
        channels[channel_id(exchange.name)] = _exchange_channel(
            exchange.name,
            exchange.type,
            getattr(exchange, "arguments", None) or {},
            on_exchange.get(exchange.name, []),
            topology,
        )
    for queue in topology.queues:
        address = templated.get(queue.name, queue.name)
        bindings = sorted(queue.bindings, key=lambda b: (b.exchange.name, b.routing_key))  # kombu keeps a set
        sources = [b.exchange.name for b in bindings]
        carried = list(dict.fromkeys(mid for s in sources for mid in on_exchange.get(s, [])))
        bound = [{"exchange": b.exchange.name, "routingKey": b.routing_key} for b in bindings]
        channels[channel_id(address)] = _queue_channel(
            address, dict(getattr(queue, "queue_arguments", None) or {}), bound, carried
        )
    channels[REPLY_CHANNEL] = {
        "address": None,
        "title": "reply_to",
        "description": "The queue a message named in its reply_to property, published to through the default "
        "exchange. Without reply_to the answer goes to the customer's own queue (hmc.customer.<customerNumber>); "
        "a Rejection for a security reason never goes to reply_to.",
        "messages": _message_refs([message_id(Side.CUSTOMER, t) for t in ("OrderStatusReply", "Rejection")]),
    }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:x-hmc-broker:contract",
        "info": _info(),
        "defaultContentType": CONTENT_TYPE,
        "servers": _servers(),
        "channels": channels,
        "operations": {op.id: _operation(op, channels) for op in OPERATIONS},
        "components": _components(),
    }


def _info() -> dict[str, Any]:
    versions = {side.value: list(DIALECTS[side].versions) for side in SIDES}
    return {
        "title": "HMC Broker",
        "version": installed_version("hmc-broker"),
        "description": "The AMQP contract between customer ordering systems and SESAM2, through HMC Broker "
        f"(generated from the code; schema versions: {json.dumps(versions)}). Every name may carry an "
        "environment prefix (HMC_PREFIX=test. gives test.hmc.customer.in); nothing else changes. Queue types "
        "are HMC_QUEUE_TYPE (classic by default, quorum in production); with HMC_PARTITIONS=1 the broker's "
        "inbound queue is bound to its exchange directly (routing key #) instead of through the hash exchange.",
        "license": {"name": "Apache-2.0"},
        "tags": [{"name": actor, "description": text} for actor, text in ACTORS.items()],
    }


def _servers() -> dict[str, Any]:
    return {
        "production": {
            "host": "{host}:5671",
            "protocol": "amqps",
            "protocolVersion": "0-9-1",
            "pathname": "/{vhost}",
            "description": "RabbitMQ over TLS; the server's certificate is verified, host name included.",
            "variables": {
                "host": {"description": "RabbitMQ's host name"},
                "vhost": {"default": "hmc", "description": "the virtual host"},
            },
            "security": [{"$ref": "#/components/securitySchemes/clientCertificate"}],
        },
        "development": {
            "host": "localhost:5672",
            "protocol": "amqp",
            "protocolVersion": "0-9-1",
            "description": "A developer's RabbitMQ, without TLS.",
            "security": [{"$ref": "#/components/securitySchemes/password"}],
        },
    }


def _exchange_channel(
    name: str, kind: str, arguments: dict[str, Any], carried: list[str], topology: Topology
) -> dict[str, Any]:
    standard = kind in ("topic", "direct", "fanout", "headers")  # the binding's enum; x-consistent-hash is not
    exchange: dict[str, Any] = {"name": name, "durable": True, "autoDelete": False, "vhost": "/"}
    if standard:
        exchange["type"] = kind
    channel: dict[str, Any] = {
        "address": name,
        "title": name,
        "description": f"Exchange {name} ({kind}).",
        "messages": _message_refs(carried),
        "bindings": {"amqp": {"is": "routingKey", "exchange": exchange, "bindingVersion": AMQP_BINDING_VERSION}},
        "x-exchange-type": kind,
    }
    if arguments:
        channel["x-exchange-arguments"] = arguments
    sources = [
        {"exchange": b.source, "routingKey": b.routing_key} for b in topology.exchange_bindings if b.destination == name
    ]
    if sources:
        channel["x-bound-to"] = sources
    return channel


def _queue_channel(
    address: str, arguments: dict[str, Any], bound: list[dict[str, str]], carried: list[str]
) -> dict[str, Any]:
    parameters = {
        p: {"description": text}
        for p, text in (
            ("customerNumber", "a configured customer number (4 to 8 digits)"),
            ("partition", "0 .. HMC_PARTITIONS - 1"),
        )
        if "{" + p + "}" in address
    }
    traits = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in arguments.items())
    channel: dict[str, Any] = {
        "address": address,
        "title": address,
        "description": f"Queue {address} ({traits}).",
        "messages": _message_refs(carried),
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {"name": address, "durable": True, "exclusive": False, "autoDelete": False, "vhost": "/"},
                "bindingVersion": AMQP_BINDING_VERSION,
            }
        },
        "x-queue-arguments": arguments,
        "x-single-active-consumer": bool(arguments.get("x-single-active-consumer", False)),
        "x-bound-to": bound,
    }
    if parameters:
        channel["parameters"] = parameters
    return channel


def _message_refs(ids: list[str]) -> dict[str, Any]:
    return {mid: {"$ref": f"#/components/messages/{mid}"} for mid in ids}


def _binding(op: Operation) -> dict[str, Any]:
    """The AMQP binding of an operation: the monitoring stream on hmc.events is published without `mandatory`
    (nobody need listen there; adapters/amqp/publisher.py)."""
    if op.action != "send":
        return CONSUME_BINDING
    return {**PUBLISH_BINDING, "mandatory": False} if op.channel == _N.exchange(Exchange.EVENTS) else PUBLISH_BINDING


def _operation(op: Operation, channels: dict[str, Any]) -> dict[str, Any]:
    cid = op.channel if op.channel == REPLY_CHANNEL else channel_id(op.channel)
    carried = list(channels[cid]["messages"])
    chosen = [
        mid
        for mid in carried
        if (not op.only or mid.split(".")[1] in op.only) and mid.split(".")[1] not in op.leave_out
    ]
    operation: dict[str, Any] = {
        "action": op.action,
        "channel": {"$ref": f"#/channels/{cid}"},
        "summary": op.summary,
        "tags": [{"name": op.actor}],
        "x-actor": op.actor,
        "messages": [{"$ref": f"#/channels/{cid}/messages/{mid}"} for mid in chosen],
        "bindings": {"amqp": _binding(op)},
    }
    if op.replies:
        operation["reply"] = {
            "address": {
                "location": "$message.header#/reply_to",
                "description": "the reply_to property; without it the customer's own queue",
            },
            "channel": {"$ref": f"#/channels/{REPLY_CHANNEL}"},
            "messages": [
                {"$ref": f"#/channels/{REPLY_CHANNEL}/messages/{message_id(Side.CUSTOMER, t)}"} for t in op.replies
            ],
        }
    return operation


def _components() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    for side in SIDES:
        dialect = DIALECTS[side]
        for cls in dialect.binding.by_type:
            messages[message_id(side, cls.__name__)] = _xml_message(dialect, cls)
    for name, schema in events.EVENTS.items():
        messages[message_id("events", name)] = {
            "name": name,
            "title": name,
            "summary": schema["description"],
            "contentType": "application/json",
            "traits": [{"$ref": "#/components/messageTraits/eventEnvelope"}],
            "payload": {"$ref": f"#/components/schemas/{name}"},
            "bindings": {"amqp": {"messageType": name, "bindingVersion": AMQP_BINDING_VERSION}},
            "x-routing-key": events.ROUTING_KEYS[name],
        }
    return {
        "messages": messages,
        "schemas": {name: {k: v for k, v in schema.items()} for name, schema in events.EVENTS.items()},
        "messageTraits": {
            **{f"{side}Envelope": _envelope(DIALECTS[side]) for side in SIDES},
            "eventEnvelope": {
                "x-amqp-properties": {k: v for k, v in AMQP_PROPERTIES.items() if k not in ("user_id", "reply_to")},
            },
        },
        "securitySchemes": _security(),
    }


def _envelope(dialect: XmlDialect) -> dict[str, Any]:
    """What every message of one dialect carries besides its body: the schema-version header, the properties."""
    return {
        "headers": {
            "type": "object",
            "required": [SCHEMA_VERSION_HEADER],
            "properties": {
                SCHEMA_VERSION_HEADER: {
                    "type": "string",
                    "enum": list(dialect.versions),
                    "description": "the schema version the body is written in (its XSD: the payload's x-xsd)",
                }
            },
        },
        "x-amqp-properties": AMQP_PROPERTIES,
        # Where the document's header fields are, relative to the root element (in the dialect's namespace):
        # what a client reads message_id, type, correlation_id and x-schema-version from.
        "x-header-elements": {
            attr: "/".join(etree.QName(step).localname for step in path.split("/"))
            for attr, path in dialect.binding.header_paths.items()
        },
    }


def _xml_message(dialect: XmlDialect, cls: type[m.Message]) -> dict[str, Any]:
    name = cls.__name__
    binding = dialect.binding
    root = binding.by_type[cls].names[0]
    found = routing.route(cls)
    reference = found.reference if found and found.reference else "header.correlation_id"
    message: dict[str, Any] = {
        "name": name,
        "title": f"{name} ({dialect.name} dialect, <{root}>)",
        "contentType": CONTENT_TYPE,
        "traits": [{"$ref": f"#/components/messageTraits/{dialect.name}Envelope"}],
        "correlationId": {
            "description": "the AMQP correlation_id: the order this message is about",
            "location": f"$message.payload#{binding.element_path(cls, reference)}",
        },
        "payload": {
            "type": "string",
            "contentMediaType": CONTENT_TYPE,
            "description": f"<{root}> in namespace {dialect.namespace}, valid against the XSD of its x-schema-version",
            "x-xsd": [
                {"schemaVersion": v, "schema": path, "namespace": dialect.namespace, "element": root}
                for v, path in dialect.versions.items()
            ],
        },
        "bindings": {"amqp": {"messageType": name, "bindingVersion": AMQP_BINDING_VERSION}},
        "x-routing-key": _routing_key(dialect.name, cls),
    }
    summary = (cls.__doc__ or "").strip().split("\n")[0]
    if summary and not summary.startswith(name + "("):  # a dataclass without a docstring gets its signature
        message["summary"] = summary
    return message


def _routing_key(side: Side, cls: type[m.Message]) -> str:
    name = cls.__name__
    found = routing.route(cls)
    if found is not None and found.target is routing.Target.INVOICE:
        return "<customerNumber>"
    if side is Side.SESAM2:
        return name
    return f"<customerNumber>.{name}"


def _security() -> dict[str, Any]:
    permissions = {
        "customer-system": "configure nothing; write hmc.customer.in only with routing keys that start with its own "
        "customer numbers (topic permission); read its own hmc.customer.<customerNumber> queues and, with invoice "
        "permission, hmc.invoice.<customerNumber>",
        "sesam2": "configure nothing; write hmc.sesam2.in; read sesam2.in",
        "broker": "configure, write and read the contract's names (hmc.*, sesam2.in); write the default exchange",
    }
    return {
        "clientCertificate": {
            "type": "X509",
            "description": "TLS client certificate (SASL EXTERNAL): the certificate's common name is the RabbitMQ "
            "user, one per customer system. Per-customer permissions are in x-permissions; the broker also checks "
            "that the AMQP user_id owns the header's customer number.",
            "x-permissions": permissions,
        },
        "password": {
            "type": "userPassword",
            "description": "User name and password (development, or where certificates are not used); the same "
            "per-customer permissions apply.",
            "x-permissions": permissions,
        },
    }


def as_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def as_yaml(doc: dict[str, Any]) -> str:
    text: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
    return text
