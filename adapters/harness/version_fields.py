"""What a customer system on customer dialect 1.1 adds to its messages: the optional 1.1 elements, in plausible
shares (a prescriber's förskrivarkod and profession, the patient's home municipality and now and then a
population-register address elsewhere, cost centres, infection risk, an incident on a fault report).

Drawn from an rng of its own (seeded by the message), so a 1.0 customer's messages, and the generator's main
sequence, are the same whether or not any customer speaks 1.1.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from adapters.harness import synthetic as syn
from broker.model import messages as m
from broker.model.codes import FaultSubject, Incident, Profession

# SCB kommunkoder of the regions the synthetic worlds are set in (Uppsala, Skåne, Halland, Västmanland).
MUNICIPALITIES = ("0380", "0381", "1280", "1281", "1283", "1380", "1382", "1980", "1983")
COST_CENTRES = ("KST-4410", "KST-4420", "KST-5102", "KST-6031")
# Who prescribes devices, roughly in the shares they do.
_PROFESSIONS = (
    (Profession.OCCUPATIONAL_THERAPIST, 45),
    (Profession.PHYSIOTHERAPIST, 30),
    (Profession.DISTRICT_NURSE, 10),
    (Profession.NURSE, 8),
    (Profession.DOCTOR, 4),
    (Profession.SPEECH_THERAPIST, 3),
)


def enrich(message: m.Message, rng: random.Random) -> m.Message:
    """`message` with the 1.1 elements a customer system on 1.1 fills in where they apply."""
    changes: dict[str, Any] = {}
    prescriber = getattr(message, "prescriber", None)
    if isinstance(prescriber, m.Prescriber):
        professions, weights = zip(*_PROFESSIONS, strict=True)
        profession = rng.choices(professions, weights)[0]
        code = f"{profession.value[:2].upper()}{rng.randrange(10**5):05d}"
        changes["prescriber"] = dataclasses.replace(prescriber, prescriber_code=code, profession=profession)
    patient = getattr(message, "patient", None)
    if isinstance(patient, m.Patient):
        registered = None
        if rng.random() < 0.1:  # staying elsewhere (a short-term home, a relative's) than where registered
            home = syn.postal_address(rng)
            registered = m.RegisteredAddress(street=home.street, postal_code=home.postal_code, city=home.city)
        changes["patient"] = dataclasses.replace(
            patient, home_municipality=rng.choice(MUNICIPALITIES), registered_address=registered
        )
    if isinstance(message, m.CustomerOrder | m.WorkOrder) and rng.random() < 0.5:
        changes["cost_centre"] = rng.choice(COST_CENTRES)
    if isinstance(message, m.WorkOrder | m.PickupOrder) and rng.random() < 0.1:
        changes["infection_risk"] = True
    if isinstance(message, m.FaultReport) and message.subject is FaultSubject.PRODUCT and rng.random() < 0.15:
        changes["incident"] = Incident.INJURY if rng.random() < 0.2 else Incident.NEAR_MISS
    return dataclasses.replace(message, **changes) if changes else message
