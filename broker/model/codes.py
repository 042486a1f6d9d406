"""Code lists of the domain. Values are the customer dialect's tokens; SESAM2's codes are in its dialect."""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """The two sides HMC Broker stands between: the customer systems and SESAM2. A delivery's side decides the
    dialect it must be written in (each side has its own) and where answers go."""

    CUSTOMER = "customer"
    SESAM2 = "sesam2"


class Direction(StrEnum):
    INBOUND = "inbound"  # customer system -> HMC
    OUTBOUND = "outbound"  # HMC -> customer system


class Priority(StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"
    ACUTE = "acute"


class AddressKind(StrEnum):
    PATIENT_RESIDENCE = "patient-residence"
    UNIT = "unit"
    BUFFER_STORE = "buffer-store"


class WorkOrderKind(StrEnum):
    CORRECTIVE_MAINTENANCE = "corrective-maintenance"
    ADAPTATION = "adaptation"
    SPECIAL_ADAPTATION = "special-adaptation"
    ASSEMBLY = "assembly"
    INSTALLATION = "installation"
    CONSULTATION = "consultation"


class ArticleType(StrEnum):
    MAIN_AID = "main-aid"
    ACCESSORY = "accessory"
    SPARE_PART = "spare-part"


class BillingForm(StrEnum):
    RENTAL = "rental"
    SALE_WITH_RETURN = "sale-with-return"
    SALE = "sale"


class CancellationReason(StrEnum):
    ARTICLE_DISCONTINUED = "article-discontinued"
    NOT_DELIVERABLE = "not-deliverable"
    DUPLICATE_ORDER = "duplicate-order"
    CUSTOMER_REQUEST = "customer-request"
    PATIENT_DECEASED = "patient-deceased"
    OTHER = "other"


class DelayReason(StrEnum):
    SUPPLIER_DELAY = "supplier-delay"
    OUT_OF_STOCK = "out-of-stock"
    TRANSPORT = "transport"
    ADAPTATION_NEEDED = "adaptation-needed"
    OTHER = "other"


class FaultSubject(StrEnum):
    PRODUCT = "product"
    SERVICE = "service"


class Profession(StrEnum):
    """The prescriber's profession (yrke): who may prescribe which devices is a regional rule keyed on it."""

    OCCUPATIONAL_THERAPIST = "occupational-therapist"  # arbetsterapeut
    PHYSIOTHERAPIST = "physiotherapist"  # fysioterapeut
    NURSE = "nurse"  # sjuksköterska
    DISTRICT_NURSE = "district-nurse"  # distriktssköterska
    DOCTOR = "doctor"  # läkare
    SPEECH_THERAPIST = "speech-therapist"  # logoped
    AUDIOLOGIST = "audiologist"  # audionom
    OPTICIAN = "optician"  # optiker (synhjälpmedel)
    OTHER = "other"


class Incident(StrEnum):
    """Avvikelse on a fault report: the fault caused, or could have caused, harm (an incident the manufacturer
    and Läkemedelsverket are told of, EU MDR 2017/745 art. 87); absent: none reported."""

    NEAR_MISS = "near-miss"  # tillbud: could have caused an injury
    INJURY = "injury"  # negativ händelse: an injury happened


class ArticleStatus(StrEnum):
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"


class OrderStatus(StrEnum):
    """Status in the broker's order view, answered to OrderStatusQuery."""

    RECEIVED = "received"
    SENT = "sent"
    CONFIRMED = "confirmed"
    DELAYED = "delayed"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
