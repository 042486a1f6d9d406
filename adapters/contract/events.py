"""The JSON Schema of what the broker publishes on hmc.events (broker/runtime.py builds the bodies).

Two event types, told apart by the AMQP `type` property: ProcessingEvent (a wire tap of every message's
processing: ids, type, stages and timings; never a payload or patient data) and PartnerOutage (a partner
stopped or resumed consuming). tests/store/test_events_schema.py and tests/unit/test_asyncapi.py check the
events the runtime really builds against this schema.
"""

from __future__ import annotations

from typing import Any

from broker.model.codes import Direction
from broker.observability.watch import Level

EVENTS_SCHEMA_ID = "urn:x-hmc-broker:events:v1"
EVENTS_SCHEMA_FILE = "events/v1/events.schema.json"  # relative to the schema directory and the bundle

_NULLABLE_TEXT: dict[str, Any] = {"type": ["string", "null"]}

PROCESSING_EVENT: dict[str, Any] = {
    "title": "ProcessingEvent",
    "description": "One message's processing by the broker: routing key <stage>.<outcome> of its last stage.",
    "type": "object",
    "additionalProperties": False,
    "required": ["message_id", "correlation_id", "type", "direction", "customer", "status", "stages"],
    "properties": {
        "message_id": {"type": "string", "description": "the processed message's message_id"},
        "correlation_id": {**_NULLABLE_TEXT, "description": "the order it belongs to"},
        "type": {**_NULLABLE_TEXT, "description": "its message type (null: not readable)"},
        "direction": {"type": "string", "enum": [d.value for d in Direction]},
        "customer": {**_NULLABLE_TEXT, "description": "the customer number"},
        "status": {"type": "string", "description": "the message's status in the store after this step"},
        "stages": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["stage", "outcome", "ms"],
                "properties": {
                    "stage": {"type": "string"},
                    "outcome": {"type": "string"},
                    "ms": {"type": ["number", "null"], "description": "the stage's duration in milliseconds"},
                },
            },
        },
    },
}

PARTNER_OUTAGE: dict[str, Any] = {
    "title": "PartnerOutage",
    "description": "A partner's consumption changed level: routing key outage.<level>.",
    "type": "object",
    "additionalProperties": False,
    "required": ["partner", "level", "previous", "outage_s"],
    "properties": {
        "partner": {"type": "string", "description": "sesam2, or a customer number"},
        "level": {"type": "string", "enum": [lv.value for lv in Level]},
        "previous": {"type": "string", "enum": [lv.value for lv in Level]},
        "outage_s": {"type": "integer", "minimum": 0, "description": "seconds since it stopped consuming"},
    },
}

EVENTS: dict[str, dict[str, Any]] = {"ProcessingEvent": PROCESSING_EVENT, "PartnerOutage": PARTNER_OUTAGE}
ROUTING_KEYS = {"ProcessingEvent": "<stage>.<outcome>", "PartnerOutage": "outage.<level>"}


def events_schema() -> dict[str, Any]:
    """One JSON Schema (draft 2020-12) for both events: the AMQP `type` property names the one that applies."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": EVENTS_SCHEMA_ID,
        "title": "HMC Broker events on hmc.events, v1",
        "$defs": EVENTS,
        "oneOf": [{"$ref": f"#/$defs/{name}"} for name in EVENTS],
    }
