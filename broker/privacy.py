"""Keep patient identifiers out of logs and error texts, and protected identities out of everything shown.

mask_identifier turns one identifier into a stable token "[patient-id:xxxxxxxx]"; mask_text replaces, in
free text, every run that passes the personnummer/samordningsnummer rules (a real date and check digit) and
every default reservnummer. Other 10- and 12-digit runs (an HSA-id's digits, a SESAM2 order number) stay
readable; patient fields are masked whatever they hold, by the contract (broker/contract/binding.py).

Tokens are HMAC-SHA256 with a secret key rather than a plain hash: there are few enough personnummer
that anyone could hash them all and reverse a plain digest. The key comes from HMC_PII_KEY, read once on
first use. Operators set HMC_PII_KEY (the same value on every worker) so that masked ids correlate
across workers and restarts; when it is unset each process draws a random key, which still masks but
makes tokens from different processes incomparable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
from xml.sax.saxutils import escape

from broker.contract import identifiers
from broker.contract.identifiers import DEFAULT_RESERVE_PATTERNS
from broker.model import messages as m
from broker.model.codes import AddressKind
from broker.model.types import IdKind

_KEY_ENV = "HMC_PII_KEY"
_key: bytes | None = None
_key_lock = threading.Lock()

# A personnummer in any of its forms; the century is optional and the separator sits before the serial.
_PNR_PARTS = re.compile(r"(?P<century>[0-9]{2})?(?P<yymmdd>[0-9]{6})[-+]?(?P<serial>[0-9]{4})")
_PNR_CENTURIES = (None, "18", "19", "20")

# In free text: a personnummer-shaped run that is not part of a longer digit run (so 13-digit GLNs and
# 14-digit timestamps stay), and default reservnummer (any case, as check() accepts) standing alone.
# UUIDs are matched first and kept as they are: an all-digit last group would otherwise look like a
# 12-digit personnummer, and "NNNNNNNN-NNNN" at the start like YYYYMMDD-NNNC.
_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
_PNR_IN_TEXT = r"(?<![0-9])(?:[0-9]{2})?[0-9]{6}[-+]?[0-9]{4}(?![0-9])"
_RESERVE_IN_TEXT = "|".join(f"(?:{pattern.pattern})" for pattern in DEFAULT_RESERVE_PATTERNS)
_IN_RUN = re.compile(
    rf"(?P<uuid>(?<![0-9A-Fa-f]){_UUID}(?![0-9A-Fa-f]))"
    rf"|(?P<pnr>{_PNR_IN_TEXT})"
    rf"|(?<![0-9A-Za-z])(?i:{_RESERVE_IN_TEXT})(?![0-9A-Za-z])"
)
# _IN_RUN starts with lookbehinds, which stop the regex engine from skipping ahead, so it is slow over
# long text. Every match and every lookaround lies within a run of these characters, so running it
# only inside runs long enough to hold a match (10+) finds exactly the same matches, several times faster.
_RUN = re.compile(r"[0-9A-Za-z+-]{10,}")


def mask_identifier(value: str) -> str:
    """A stable, non-reversible token for one patient identifier."""
    digest = hmac.new(_pii_key(), _canonical(value).encode(), hashlib.sha256).hexdigest()
    return f"[patient-id:{digest[:8]}]"


def mask_text(text: str) -> str:
    """`text` with every patient identifier replaced by its mask_identifier token."""
    return _RUN.sub(_mask_run, text)


def _mask_run(run: re.Match[str]) -> str:
    return _IN_RUN.sub(_mask_match, run[0])


def _mask_match(match: re.Match[str]) -> str:
    if match["uuid"] or (match["pnr"] and not _is_patient_id(match[0])):
        return match[0]
    return mask_identifier(match[0])


# What stands in for a protected patient's name and address in everything shown, exported or answered.
WITHHELD = "[skyddad identitet]"


def protected_texts(message: m.Message | None) -> list[str]:
    """The texts that would reveal where a patient with protected identity lives (identity_texts); [] when
    the patient is not protected."""
    patient = getattr(message, "patient", None)
    if not isinstance(patient, m.Patient) or not patient.protected:
        return []
    return identity_texts(message)


def identity_texts(message: m.Message | None) -> list[str]:
    """Who the message's patient is and where they live, flag or no flag: the patient's name, the
    population-register address and every field of an address at the patient's residence. Not the home
    municipality: it is what pays, and with skyddad folkbokföring Skatteverket keeps the person registered
    where they were (the municipality does not say where they live); Rejections do not echo it."""
    patient = getattr(message, "patient", None)
    if not isinstance(patient, m.Patient):
        return []
    texts = [patient.name]
    registered = patient.registered_address
    if registered is not None:
        texts += [registered.street, registered.postal_code, registered.city]
        texts += [registered.care_of] if registered.care_of else []
    for attr in ("delivery", "address"):
        address = getattr(message, attr, None)
        if isinstance(address, m.Address) and address.kind is AddressKind.PATIENT_RESIDENCE:
            texts += [address.name, address.street, address.postal_code, address.city]
            texts += [t for t in (address.phone, address.instructions) if t]
    return texts


def inherited_texts(message: m.Message | None, opening: m.Message | None) -> list[str]:
    """What to withhold from a message about an order whose opening message names a protected patient, when the
    message says nothing of the patient itself (SESAM2's answers carry no patient, so no flag of their own): that
    patient's name and addresses wherever they appear (a note, an answer), and who signed for a delivery at the
    home (the patient, or someone who lives there). [] when the opening message's patient is not protected."""
    if not protected_texts(opening):
        return []
    signed = getattr(message, "signed_by", None)
    return identity_texts(opening) + ([signed] if isinstance(signed, str) else [])


# The flag as either dialect writes it (mapping.py: Patient.protected), for a document that did not parse.
_FLAGGED = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:ProtectedIdentity|PATSKYDD)>\s*(?:true|1|J)\s*<")


def flagged_protected(payload: bytes) -> bool:
    """Whether a document says its patient is protected, read from the bytes (it may not be valid at all)."""
    return _FLAGGED.search(payload) is not None


def withhold_protected(text: str, message: m.Message | None) -> str:
    """`text` (a payload, a translation) with a protected patient's name and addresses replaced by WITHHELD."""
    return withhold(text, protected_texts(message))


def withhold(text: str, texts: list[str]) -> str:
    """`text` with each of `texts` replaced by WITHHELD, in plain and in XML-escaped form. Longest first, so a
    street that holds the city is replaced whole."""
    for value in sorted({t for t in texts if t.strip()}, key=len, reverse=True):
        for form in {value, escape(value), escape(value, {'"': "&quot;", "'": "&apos;"})}:
            text = text.replace(form, WITHHELD)
    return text


def _is_patient_id(value: str) -> bool:
    """Whether a personnummer-shaped run passes the rules (a real date, day + 60 for a samordningsnummer, the
    check digit; or a reservnummer): the digits of an HSA-id or a SESAM2 order number stay readable."""
    try:
        identifiers.check(IdKind.PATIENT, value)
    except identifiers.IdentifierError:
        return False
    return True


def _canonical(value: str) -> str:
    # The same person in 10- and 12-digit forms, with or without separator, hashes the same: keep only
    # the body YYMMDDNNNC. A 12-digit value with any other "century" (a "99" reservnummer) is kept whole,
    # so it cannot share a token with a personnummer.
    stripped = value.strip()
    match = _PNR_PARTS.fullmatch(stripped)
    if match is not None and match["century"] in _PNR_CENTURIES:
        return match["yymmdd"] + match["serial"]
    return re.sub(r"[^0-9A-Za-z]", "", stripped).upper()


def _pii_key() -> bytes:
    global _key
    key = _key
    if key is None:
        with _key_lock:  # so concurrent first calls agree on one random key
            key = _key
            if key is None:
                configured = os.environ.get(_KEY_ENV)
                key = configured.encode() if configured else secrets.token_bytes(32)
                _key = key
    return key
