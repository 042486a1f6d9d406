"""Synthetic identities: identifiers that pass every rule but belong to nobody, and Swedish-looking names.

- personnummer and samordningsnummer use birth numbers 980-999, the range Skatteverket sets aside for
  test persons, so no generated value can be a real person's;
- phone numbers come from the ranges PTS reserves for use in fiction;
- organisation numbers (and the HSA-ids built on them) are random with a correct check digit: they name
  no real unit, but they are not personal data either.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

FIRST_NAMES = (
    "Anna", "Maria", "Karin", "Elsa", "Ingrid", "Birgitta", "Margareta", "Kerstin", "Lena", "Astrid",
    "Sara", "Emma", "Linnea", "Ebba", "Märta", "Gunilla", "Åsa", "Sofia", "Ulla", "Britt",
    "Erik", "Lars", "Karl", "Anders", "Johan", "Per", "Nils", "Olof", "Gustav", "Sven",
    "Mikael", "Björn", "Göran", "Åke", "Bengt", "Leif", "Jonas", "Oskar", "Hassan", "Ali",
)  # fmt: skip
SURNAMES = (
    "Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Persson",
    "Svensson", "Gustafsson", "Pettersson", "Jonsson", "Jansson", "Hansson", "Bengtsson", "Jönsson",
    "Lindberg", "Lindqvist", "Berg", "Lundgren", "Bergström", "Åkesson", "Sjöberg", "Holm", "Ekström",
    "Mohammed", "Lindström", "Håkansson", "Sandberg", "Björk",
)  # fmt: skip
STREETS = (
    "Storgatan", "Kyrkogatan", "Björkvägen", "Lindvägen", "Skolgatan", "Ängsvägen", "Stationsgatan",
    "Parkgatan", "Tallvägen", "Bäckvägen", "Solrosvägen", "Granvägen", "Östergatan", "Drottninggatan",
    "Rosengatan", "Kvarngatan", "Hagagatan", "Norra Promenaden", "Västra Vallgatan", "Lärkstigen",
)  # fmt: skip
# City and the first three digits of its postal codes.
CITIES = (
    ("Lund", 222), ("Malmö", 214), ("Helsingborg", 254), ("Kristianstad", 291), ("Ystad", 271),
    ("Trelleborg", 231), ("Halmstad", 302), ("Varberg", 432), ("Falkenberg", 311), ("Kungsbacka", 434),
    ("Uppsala", 753), ("Enköping", 745),
)  # fmt: skip
UNIT_KINDS = (
    "Rehabenheten", "Vårdcentralen", "Hemsjukvården", "Arbetsterapin", "Fysioterapin", "Korttidsboendet",
    "Avdelning 12, geriatrik", "Avdelning 31, ortopedi", "Hemtjänst Norr", "Hemtjänst Söder",
)  # fmt: skip
# PTS ranges for fiction: (prefix, first local number, how many).
_FICTION_PHONES = (("070-174 06", 5, 95), ("031-390 06", 0, 100), ("040-628 04", 0, 100), ("08-465 004", 0, 100))


def luhn_digit(body: str) -> str:
    """The check digit that makes body + digit pass the Luhn (mod 10) test."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def personnummer(rng: random.Random, *, born_after: date, born_before: date, coordination: bool = False) -> str:
    """12 digits YYYYMMDDNNNC from the test range; a samordningsnummer has day + 60."""
    born = born_after + timedelta(days=rng.randrange((born_before - born_after).days))
    serial = rng.randint(980, 999)
    day = born.day + (60 if coordination else 0)
    body = f"{born:%y%m}{day:02d}{serial:03d}"
    return f"{born.year // 100}{body}{luhn_digit(body)}"


def organisation_number(rng: random.Random) -> str:
    """10 digits without the dash; the third digit 2 or more, as the rules of organisation numbers say."""
    body = f"{rng.randint(10, 99)}{rng.randint(2, 9)}{rng.randrange(10**6):06d}"
    return body + luhn_digit(body)


def hsa_id(organisation: str, suffix: str) -> str:
    return f"SE{organisation}-{suffix}"


def phone(rng: random.Random) -> str:
    prefix, first, count = rng.choice(_FICTION_PHONES)
    return f"{prefix} {first + rng.randrange(count):02d}"


def full_name(rng: random.Random, surname: str | None = None) -> str:
    return f"{rng.choice(FIRST_NAMES)} {surname or rng.choice(SURNAMES)}"


@dataclass(frozen=True)
class PostalAddress:
    street: str
    postal_code: str
    city: str


def postal_address(rng: random.Random, *, flat: bool = False) -> PostalAddress:
    city, area = rng.choice(CITIES)
    street = f"{rng.choice(STREETS)} {rng.randint(1, 68)}"
    if flat:
        street += f" lgh {rng.randint(10, 16)}{rng.randint(1, 9):02d}"
    return PostalAddress(street, f"{area} {rng.randint(20, 99):02d}", city)
