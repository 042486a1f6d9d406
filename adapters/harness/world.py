"""The synthetic population behind one customer system: its units, staff, patients and buffer stores.

Built from its own rng, seeded by (seed, customer), so adding a customer to a run leaves the others'
populations as they were.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from adapters.harness import synthetic as syn
from broker.model import messages as m


@dataclass(frozen=True)
class Unit:
    hsa_id: str
    name: str
    address: syn.PostalAddress
    phone: str


@dataclass(frozen=True)
class Resident:
    """A patient and where they live."""

    patient: m.Patient
    home: syn.PostalAddress
    phone: str


@dataclass(frozen=True)
class BufferStore:
    store_id: str
    unit: Unit


@dataclass(frozen=True)
class World:
    customer: str
    organisation: str
    units: tuple[Unit, ...]
    staff: tuple[m.Person, ...]  # prescribers and orderers
    residents: tuple[Resident, ...]
    stores: tuple[BufferStore, ...]

    def resident(self, patient_id: str) -> Resident | None:
        return next((r for r in self.residents if r.patient.patient_id == patient_id), None)


def build(seed: int, customer: str, *, patients: int = 40, today: date | None = None) -> World:
    rng = random.Random(f"{seed}/world/{customer}")
    today = today or date.today()
    organisation = syn.organisation_number(rng)
    units = tuple(
        Unit(
            hsa_id=syn.hsa_id(organisation, f"E{rng.randint(100, 999)}{chr(65 + i)}"),
            name=f"{kind}, {address.city}",
            address=address,
            phone=syn.phone(rng),
        )
        for i, kind in enumerate(rng.sample(syn.UNIT_KINDS, 4))
        for address in [syn.postal_address(rng)]
    )
    staff = tuple(
        m.Person(
            hsa_id=syn.hsa_id(organisation, f"{rng.choice('FBS')}{rng.randint(10, 99)}{chr(65 + i)}"),
            name=syn.full_name(rng),
            phone=syn.phone(rng) if rng.random() < 0.8 else None,
        )
        for i in range(8)
    )
    residents = tuple(_resident(rng, today) for _ in range(patients))
    stores = tuple(
        BufferStore(store_id=f"BUF-{customer}-{i:02d}", unit=unit) for i, unit in enumerate(units[:2], start=1)
    )
    return World(customer, organisation, units, staff, residents, stores)


def _resident(rng: random.Random, today: date) -> Resident:
    # Users of assistive devices are mostly old: three in four born before 1960.
    if rng.random() < 0.75:
        after, before = date(1925, 1, 1), date(1960, 1, 1)
    else:
        after, before = date(1960, 1, 1), min(date(2020, 1, 1), today)
    patient_id = syn.personnummer(rng, born_after=after, born_before=before, coordination=rng.random() < 0.08)
    return Resident(
        patient=m.Patient(patient_id=patient_id, name=syn.full_name(rng)),
        home=syn.postal_address(rng, flat=rng.random() < 0.5),
        phone=syn.phone(rng),
    )
