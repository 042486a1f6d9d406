"""Translation between the two sides happens through the model: only the envelope changes here.

The dialect bindings do the real mapping (names, structure, code lists, date formats); this module
decides what the translated message's header says. Its id is derived from the source id, so a
replay or a redelivery produces the same id and consumers can de-duplicate on it. The origin is kept:
SentAt and SenderSystem stay the sender's (when the prescriber ordered, from which front-end), and the
broker's own time goes in forwarded_at.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

from broker.model.messages import Message

BROKER_SYSTEM = "HMC-Broker"
_ID_NAMESPACE = uuid.UUID("6b3f7d52-3c4e-4f0a-9d3e-5a1c2b7e8f90")


def derived_id(source_id: str, purpose: str) -> str:
    """A stable id for the message the broker makes from `source_id` for `purpose`."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{source_id}/{purpose}"))


def forward(message: Message, *, purpose: str = "translated", now: datetime | None = None) -> Message:
    """The same business content and origin under the broker's id, caused by the original message."""
    source = message.header
    header = dataclasses.replace(
        source,
        message_id=derived_id(source.message_id, purpose),
        forwarded_at=now or datetime.now(UTC).replace(microsecond=0),
        causation_id=source.message_id,
    )
    return dataclasses.replace(message, header=header)
