"""The prescriber register: who was seen ordering for a customer, in which role and unit, first and last.

A manager reviews it to see that the users linked to a unit are the right ones (today the regions do it
with a Crystal Reports export). Every accepted customer message names its people: prescriber
(förskrivare), orderer (beställare) or fault reporter, each with an HSA-id, and the sending unit's HSA-id
in the header; in customer dialect 1.1 a prescriber also comes with the förskrivarkod and profession.

Each accepted customer message's people are handed to the register's repository
(broker/store/prescriber_register.py), which writes the batch's in one statement.
"""

from __future__ import annotations

from datetime import UTC

from broker.contract import routing
from broker.contract.routing import Target
from broker.handlers.registry import Context, Registry
from broker.model import messages as m
from broker.model.codes import Direction, Profession
from broker.store.prescriber_register import Sighting

ROLES = {"prescriber": "förskrivare", "orderer": "beställare", "reporter": "felanmälare"}
# The register's readers are Swedish managers: the profession as they name it (broker/model/codes.py).
PROFESSIONS: dict[str, str] = {
    Profession.OCCUPATIONAL_THERAPIST: "arbetsterapeut",
    Profession.PHYSIOTHERAPIST: "fysioterapeut",
    Profession.NURSE: "sjuksköterska",
    Profession.DISTRICT_NURSE: "distriktssköterska",
    Profession.DOCTOR: "läkare",
    Profession.SPEECH_THERAPIST: "logoped",
    Profession.AUDIOLOGIST: "audionom",
    Profession.OPTICIAN: "optiker",
    Profession.OTHER: "annan",
}


def profession_name(value: str | None) -> str | None:
    """The stored profession as the register's readers name it (a value a later version adds: as stored)."""
    if value is None:
        return None
    return PROFESSIONS.get(value, value)  # a StrEnum member is found by its value


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
        if isinstance(person, m.Prescriber):  # 1.1 states the förskrivarkod and profession (None in 1.0)
            code, profession = person.prescriber_code, person.profession.value if person.profession else None
            found.append(
                Sighting(customer, person.hsa_id.upper(), role, unit.upper(), person.name, at, code, profession)
            )
        elif isinstance(person, m.Person):
            found.append(Sighting(customer, person.hsa_id.upper(), role, unit.upper(), person.name, at))
    return found


def register(registry: Registry) -> None:
    registry.on(*routing.routed_types(Target.SESAM2, Target.BROKER))(note_people)


def note_people(ctx: Context, message: m.Message) -> None:
    ctx.uow.prescribers.add(seen(message))
