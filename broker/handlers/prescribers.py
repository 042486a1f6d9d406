"""The prescriber register: who was seen ordering for a customer, in which role and unit, first and last.

A manager reviews it to see that the users linked to a unit are the right ones (today the regions do it
with a Crystal Reports export). Every accepted customer message names its people: prescriber
(förskrivare), orderer (beställare) or fault reporter, each with an HSA-id, and the sending unit's HSA-id
in the header.

Each accepted customer message's people are handed to the register's repository
(broker/store/prescriber_register.py), which writes the batch's in one statement.
"""

from __future__ import annotations

from datetime import UTC

from broker.contract import routing
from broker.contract.routing import Target
from broker.handlers.registry import Context, Registry
from broker.model import messages as m
from broker.model.codes import Direction
from broker.store.prescriber_register import Sighting

ROLES = {"prescriber": "förskrivare", "orderer": "beställare", "reporter": "felanmälare"}
_PEOPLE = (("prescriber", "prescriber"), ("orderer", "orderer"), ("reporter", "reporter"))


def seen(message: m.Message) -> list[Sighting]:
    """The people a customer message names, as the register keys them."""
    customer = message.header.customer_number
    if customer is None or message.direction is not Direction.INBOUND:
        return []
    at = message.header.sent_at.astimezone(UTC)
    unit = message.header.unit_hsa_id or ""
    found = []
    for attr, role in _PEOPLE:
        person = getattr(message, attr, None)
        if isinstance(person, m.Person):
            found.append(Sighting(customer, person.hsa_id.upper(), role, unit.upper(), person.name, at))
    return found


def register(registry: Registry) -> None:
    registry.on(*routing.routed_types(Target.SESAM2, Target.BROKER))(note_people)


def note_people(ctx: Context, message: m.Message) -> None:
    ctx.uow.prescribers.add(seen(message))
