"""Identifier rules: one check per IdKind, returning the value's canonical form.

Every check strips surrounding whitespace, refuses empty and non-ASCII values, and raises
IdentifierError(rule, message) on the first rule broken. Rule ids ("personnummer.check-digit", ...)
are part of the contract: error lines print them. Messages never repeat the value: for a patient it is
personal data, and for everything else the caller already knows which field it is reporting.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from datetime import date
from enum import StrEnum

from stdnum import ean

from broker.model.types import IdKind


class IdentifierError(ValueError):
    """An identifier broke `rule`; `message` says what is wrong without repeating the value."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(rule, message)  # both in args, so the error survives pickling
        self.rule = rule
        self.message = message

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"


class PatientIdKind(StrEnum):
    PERSONNUMMER = "personnummer"
    SAMORDNINGSNUMMER = "samordningsnummer"
    RESERVNUMMER = "reservnummer"


# Synthetic defaults, not any region's real scheme; a region replaces them through
# HMC_RESERVE_ID_PATTERNS (see reserve_patterns_from). Patterns must match the whole upper-cased value.
#  - "99" + 10 digits: 12 digits whose "year" 99xx can never be a real personnummer's;
#  - birth date YYYYMMDD + 1-2 letters + 2-3 digits.
DEFAULT_RESERVE_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"99[0-9]{10}"),
    re.compile(r"[0-9]{8}[A-Z]{1,2}[0-9]{2,3}"),
)

# Patterns use [0-9], never \d: \d also matches non-ASCII digits.
# The personnummer family: digits with at most one '-' or '+'; with 10 or 12 digits the value gets the
# personnummer rules (and their precise errors), otherwise it can only be a reservnummer.
_PNR_FAMILY = re.compile(r"[0-9]+(?:[-+][0-9]+)?")
# YYYYMMDD[-]NNNC or YYMMDD[-+]NNNC; '+' only in the 10-digit form (it stands in for the century).
_PNR = re.compile(r"(?P<century>[0-9]{2})?(?P<yymmdd>[0-9]{6})(?P<sep>[-+]?)(?P<serial>[0-9]{4})")
_PATIENT_FORMS = (
    "expected a personnummer or samordningsnummer (YYYYMMDDNNNC, YYYYMMDD-NNNC, YYMMDD-NNNC, YYMMDDNNNC,"
    " or YYMMDD+NNNC at age one hundred or more) or a reservnummer in a form this region accepts"
)
# Skatteverket, SKV 704 (Personnummer) and SKVM 2010:3 (samordningsnummer): the day of a samordningsnummer is
# the birth day plus 60, and the birth number (the three digits after the date) is drawn from 001-999.
_SAMORDNING_DAY_OFFSET = 60
_EARLIEST_BIRTH_YEAR = 1800  # also keeps a mistyped century (e.g. 09 for 19) from passing as a date


def check(
    kind: IdKind,
    value: str,
    *,
    reserve_patterns: Sequence[re.Pattern[str]] = DEFAULT_RESERVE_PATTERNS,
    today: date | None = None,
) -> str:
    """Validate `value` as a `kind` identifier and return its normalised form.

    `reserve_patterns` and `today` (which resolves the century of 10-digit personnummer) only matter
    for IdKind.PATIENT.
    """
    stripped = value.strip()
    if not stripped:
        raise IdentifierError(f"{kind.value}.format", "is empty")
    # Identifiers are ASCII; refusing anything else early also keeps str.upper() from turning e.g. the
    # long s (U+017F) into 'S' and accepting it.
    if not stripped.isascii():
        raise IdentifierError(f"{kind.value}.format", "contains characters outside ASCII")
    if kind is IdKind.PATIENT:
        return _check_patient(stripped, reserve_patterns, today or date.today())
    return _checked(kind, stripped)


@functools.lru_cache(maxsize=8192)
def _checked(kind: IdKind, value: str) -> str:
    """The rules of every kind but the patient's are pure functions of the text, and the same values come back
    all day (a region's prescribers, units and articles, a dozen in every order): each is checked once. A
    refusal raises every time (lru_cache keeps no exceptions). Patient identifiers are not kept: they are
    personal data, and their century depends on the day."""
    return _CHECKS[kind](value)


def patient_id_kind(
    normalised: str, reserve_patterns: Sequence[re.Pattern[str]] = DEFAULT_RESERVE_PATTERNS
) -> PatientIdKind:
    """Which kind of patient identifier a value (as returned by check) is; same order as check."""
    value = normalised.strip().upper()
    if _is_reserve(value, reserve_patterns):
        return PatientIdKind.RESERVNUMMER
    match = _PNR.fullmatch(value)
    if match is None:
        raise IdentifierError("patient-id.format", _PATIENT_FORMS)
    return _pnr_kind(int(match["yymmdd"][4:]))


def reserve_patterns_from(spec: str) -> tuple[re.Pattern[str], ...]:
    """Parse HMC_RESERVE_ID_PATTERNS: regular expressions separated by ';' (so none may contain ';').

    Each must match a whole reservnummer, upper-cased. A blank spec keeps DEFAULT_RESERVE_PATTERNS; a
    region that has no reservnummer sets a pattern that never matches, such as "(?!)".
    """
    sources = [part.strip() for part in spec.split(";") if part.strip()]
    if not sources:
        return DEFAULT_RESERVE_PATTERNS
    patterns: list[re.Pattern[str]] = []
    for position, source in enumerate(sources, start=1):
        try:
            patterns.append(re.compile(source))
        except re.error as exc:
            raise IdentifierError(
                "reservnummer.config", f"pattern {position} is not a valid regular expression: {exc.msg}"
            ) from None
    return tuple(patterns)


# --- patient ---------------------------------------------------------------------------------------


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)  # a digit doubled, its two digits summed


def _luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of ASCII digits, as stdnum.luhn.is_valid answers it.

    Callers have matched [0-9] already; stdnum validated and compacted the value again and took 1.7 us
    of the 2.5 us an HSA-id check cost (three of them in every order).
    """
    doubled = sum([_DOUBLED[ord(d) - 48] for d in digits[-2::-2]])
    return (sum(map(int, digits[-1::-2])) + doubled) % 10 == 0


def _is_reserve(value: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    return any(pattern.fullmatch(value) for pattern in patterns)


def _pnr_kind(day: int) -> PatientIdKind:
    if _SAMORDNING_DAY_OFFSET < day <= _SAMORDNING_DAY_OFFSET + 31:
        return PatientIdKind.SAMORDNINGSNUMMER
    return PatientIdKind.PERSONNUMMER


def _check_patient(value: str, reserve_patterns: Sequence[re.Pattern[str]], today: date) -> str:
    # Order: a full reserve-pattern match wins first, so a region's reservnummer may look like a
    # personnummer (the default "99" + 10 digits does); then the personnummer family; else refuse.
    upper = value.upper()
    if _is_reserve(upper, reserve_patterns):
        return upper
    if _PNR_FAMILY.fullmatch(value) and len(value.replace("-", "").replace("+", "")) in (10, 12):
        return _check_personnummer(value, today)
    raise IdentifierError("patient-id.format", _PATIENT_FORMS)


def _check_personnummer(value: str, today: date) -> str:
    match = _PNR.fullmatch(value)
    if match is None or (match["century"] and match["sep"] == "+"):
        raise IdentifierError(
            "personnummer.format",
            "the separator ('-', or '+' at age one hundred or more) goes before the last four digits;"
            " '+' only in the 10-digit form",
        )
    yymmdd, body = match["yymmdd"], match["yymmdd"] + match["serial"]
    month, day = int(yymmdd[2:4]), int(yymmdd[4:])
    kind = _pnr_kind(day)
    if kind is PatientIdKind.SAMORDNINGSNUMMER:
        day -= _SAMORDNING_DAY_OFFSET
    if match["century"]:
        year = int(match["century"] + yymmdd[:2])
    else:
        year = _resolve_year(int(yymmdd[:2]), match["sep"] == "+", today)
    try:
        born = date(year, month, day)
    except ValueError:
        raise IdentifierError(f"{kind}.date", "the date part is not a real date") from None
    if born > today:
        raise IdentifierError(f"{kind}.date", "the date part is in the future")
    if born.year < _EARLIEST_BIRTH_YEAR:
        raise IdentifierError(f"{kind}.date", "the date part is too early to be a birth date")
    if match["serial"][:3] == "000":
        raise IdentifierError(f"{kind}.birth-number", "the birth number (digits 7-9 of 10) must be 001-999")
    if not _luhn_valid(body):
        raise IdentifierError(f"{kind}.check-digit", "check digit does not match (Luhn)")
    return f"{year // 100:02d}{body}"


def _resolve_year(yy: int, hundred_or_older: bool, today: date) -> int:
    # Folkbokföringslagen 18 § and SKV 704: the '-' becomes '+' from the calendar year the person turns
    # 100, whatever the birthday. So '-' is the latest year ending in yy that is at most 99 years ago
    # (a date later this year then fails as "in the future"), and '+' the one a century before it.
    year = today.year - (today.year - yy) % 100
    return year - 100 if hundred_or_older else year


# --- other kinds -----------------------------------------------------------------------------------

_ORG = re.compile(r"([0-9]{6})-?([0-9]{4})")
_HSA = re.compile(r"(?i:SE)([0-9]{10})-[A-Za-z0-9]+")
_HSA_MAX = 31
_GLN = re.compile(r"[0-9]{13}")
_CUSTOMER = re.compile(r"[0-9]{4,8}")
_ARTICLE = re.compile(r"[0-9A-Z][0-9A-Z-]{2,19}")
_ISO9999 = re.compile(r"([0-9]{2})(?: ?([0-9]{2})(?: ?([0-9]{2}))?)?")
# The classes (first level) of ISO 9999:2022 "Assistive products - Classification and terminology", the
# same as in the 2016 and 2011 editions (class 03 of the 1998 edition became 04). Codes only: the standard's
# texts are ISO's and are not shipped.
ISO9999_CLASSES = frozenset({"04", "05", "06", "09", "12", "15", "18", "22", "24", "27", "28", "30"})
# Postnord's format for a Swedish postal code: five digits, the first 1-9, written NNN NN or NNNNN.
_POSTAL_CODE = re.compile(r"([1-9][0-9]{2}) ?([0-9]{2})")
_INDIVIDUAL = re.compile(r"[0-9A-Z][0-9A-Z/-]{0,29}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_REFERENCE = re.compile(r"[0-9A-Za-z][0-9A-Za-z._/-]{0,34}")
_SESAM2_ORDER = re.compile(r"[0-9]{10}")


def _require(pattern: re.Pattern[str], value: str, rule: str, message: str) -> re.Match[str]:
    match = pattern.fullmatch(value)
    if match is None:
        raise IdentifierError(rule, message)
    return match


def _check_hsa_id(value: str) -> str:
    if len(value) > _HSA_MAX:
        raise IdentifierError("hsa-id.format", f"is longer than {_HSA_MAX} characters")
    match = _require(_HSA, value, "hsa-id.format", "expected SE + 10-digit organisation number + '-' + letters/digits")
    if not _luhn_valid(match[1]):
        raise IdentifierError("hsa-id.organisation-number", "organisation number check digit does not match")
    return "SE" + value[2:]


def _check_organisation_number(value: str) -> str:
    message = "expected 10 digits as NNNNNN-NNNN or NNNNNNNNNN, the third digit 2 or higher"
    match = _require(_ORG, value, "organisation-number.format", message)
    if int(value[2]) < 2:
        raise IdentifierError("organisation-number.format", message)
    if not _luhn_valid(match[1] + match[2]):
        raise IdentifierError("organisation-number.check-digit", "check digit does not match (Luhn)")
    return f"{match[1]}-{match[2]}"


def _check_gln(value: str) -> str:
    _require(_GLN, value, "gln.format", "expected 13 digits")
    if not ean.is_valid(value):
        raise IdentifierError("gln.check-digit", "check digit does not match (GS1 mod 10)")
    return value


def _check_customer_number(value: str) -> str:
    _require(_CUSTOMER, value, "customer-number.format", "expected 4 to 8 digits")
    return value


def _check_article_number(value: str) -> str:
    upper = value.upper()
    message = "expected 3-20 characters: a letter or digit, then letters, digits or '-'"
    _require(_ARTICLE, upper, "article-number.format", message)
    return upper


def _check_iso9999(value: str) -> str:
    message = "expected 1 to 3 pairs of digits, optionally separated by single spaces"
    pairs = [pair for pair in _require(_ISO9999, value, "iso9999.format", message).groups() if pair]
    if pairs[0] not in ISO9999_CLASSES:
        known = ", ".join(sorted(ISO9999_CLASSES))
        raise IdentifierError("iso9999.class", f"the class (first pair) is not an ISO 9999 class ({known})")
    return " ".join(pairs)


def _check_postal_code(value: str) -> str:
    message = "expected a Swedish postal code: five digits, the first 1-9, as NNN NN or NNNNN"
    match = _require(_POSTAL_CODE, value, "postal-code.format", message)
    return f"{match[1]} {match[2]}"


def _check_individual_number(value: str) -> str:
    upper = value.upper()
    message = "expected 1-30 characters: a letter or digit, then letters, digits, '/' or '-'"
    _require(_INDIVIDUAL, upper, "individual-number.format", message)
    return upper


def _check_message_id(value: str) -> str:
    lower = value.lower()
    _require(_UUID, lower, "message-id.format", "expected a UUID in 8-4-4-4-12 hexadecimal form")
    return lower


def _check_reference(value: str) -> str:
    message = "expected 1-35 characters: a letter or digit, then letters, digits, '.', '_', '/' or '-'"
    _require(_REFERENCE, value, "reference.format", message)
    return value


def _check_sesam2_order_number(value: str) -> str:
    _require(_SESAM2_ORDER, value, "sesam2-order-number.format", "expected exactly 10 digits")
    return value


_CHECKS: dict[IdKind, Callable[[str], str]] = {
    IdKind.HSA_ID: _check_hsa_id,
    IdKind.ORGANISATION_NUMBER: _check_organisation_number,
    IdKind.GLN: _check_gln,
    IdKind.CUSTOMER_NUMBER: _check_customer_number,
    IdKind.ARTICLE_NUMBER: _check_article_number,
    IdKind.ISO9999: _check_iso9999,
    IdKind.INDIVIDUAL_NUMBER: _check_individual_number,
    IdKind.MESSAGE_ID: _check_message_id,
    IdKind.REFERENCE: _check_reference,
    IdKind.SESAM2_ORDER_NUMBER: _check_sesam2_order_number,
    IdKind.POSTAL_CODE: _check_postal_code,
}
