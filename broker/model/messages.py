"""The domain model: one class per message type, free of XML, AMQP and SQL.

Both dialects parse into these classes and render from them, so translating customer <-> SESAM2 is
parse in one dialect, render in the other. Field annotations (broker.model.types) say what each value
is; the dialect bindings use them for schemas and identifier rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, ClassVar

from broker.model.codes import (
    AddressKind,
    ArticleStatus,
    ArticleType,
    BillingForm,
    CancellationReason,
    DelayReason,
    Direction,
    FaultSubject,
    Incident,
    OrderStatus,
    Priority,
    Profession,
    WorkOrderKind,
)
from broker.model.types import (
    ArticleNumber,
    Code,
    CustomerNumber,
    Description,
    Gln,
    HsaId,
    IndividualNumber,
    InvoiceQuantity,
    Iso9999Code,
    Items,
    Line,
    LineNumber,
    MessageId,
    Month,
    MunicipalityCode,
    Name,
    PatientId,
    Phone,
    PostalCode,
    PrescriberCode,
    Quantity,
    Reference,
    Sesam2OrderNumber,
    StockQuantity,
    Url,
)

SCHEMA_VERSION = "1.0"
# The customer dialect's versions, oldest first: each adds optional elements only (broker/contract/mapping.py
# marks what came when), so a reader of the newest accepts them all.
SCHEMA_VERSIONS = ("1.0", "1.1")

# ---------------------------------------------------------------- envelope header


@dataclass(frozen=True, kw_only=True, slots=True)
class Header:
    """The common envelope of every message, in both dialects."""

    message_id: MessageId
    message_type: Code
    schema_version: Code = SCHEMA_VERSION
    sent_at: datetime
    sender_system: Code
    customer_number: CustomerNumber | None = None  # absent only on broadcasts (ArticleRegisterUpdate)
    unit_hsa_id: HsaId | None = None  # the sending unit, for customer-side messages
    correlation_id: Reference | None = None  # the order (or work order, pickup, report) it belongs to
    causation_id: MessageId | None = None  # the message that caused this one
    # When the broker forwarded it: sent_at and sender_system stay the origin's (when the prescriber ordered,
    # from which front-end). Carried in the SESAM2 dialect; None on what the broker has not forwarded.
    forwarded_at: datetime | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    header: Header
    direction: ClassVar[Direction]

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


# ---------------------------------------------------------------- value objects


@dataclass(frozen=True, kw_only=True, slots=True)
class Person:
    """An orderer (beställare), reporter or HMC user, identified by HSA-id."""

    hsa_id: HsaId
    name: Name
    phone: Phone | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Prescriber(Person):
    """A prescriber (förskrivare), with (1.1) the förskrivarkod the region gave with the right to prescribe
    devices, and the profession, on which the region's prescribing rules depend."""

    prescriber_code: PrescriberCode | None = None
    profession: Profession | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RegisteredAddress:
    """The patient's folkbokföringsadress (1.1): where the population register has them, which decides the
    home municipality; it may differ from where they stay (a short-term home, a relative's)."""

    street: Line
    postal_code: PostalCode
    city: Name
    care_of: Name | None = None  # c/o


@dataclass(frozen=True, kw_only=True, slots=True)
class Patient:
    patient_id: PatientId
    name: Name
    # Skyddade personuppgifter (sekretessmarkering, skyddad folkbokföring): the name and the patient's
    # addresses never appear in what the broker shows, exports or answers (broker/privacy.py). None: not stated.
    protected: bool | None = None
    # 1.1: the population-register address (the protected flag withholds it too), and the home municipality
    # (folkbokföringskommun, SCB's kommunkod) that pays for the device.
    registered_address: RegisteredAddress | None = None
    home_municipality: MunicipalityCode | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Address:
    kind: AddressKind
    name: Name  # recipient: the patient, the unit or the buffer store
    street: Line
    postal_code: PostalCode
    city: Name
    buffer_store_id: Reference | None = None
    phone: Phone | None = None
    instructions: Line | None = None  # door code, floor, when to call


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderLine:
    line_number: LineNumber
    article_number: ArticleNumber
    quantity: Quantity
    article_type: ArticleType
    iso9999: Iso9999Code | None = None
    comment: Line | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceLine:
    """A device (article, possibly a unique individual) and how many."""

    line_number: LineNumber
    article_number: ArticleNumber
    quantity: Quantity
    individual_number: IndividualNumber | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StockItem:
    article_number: ArticleNumber
    quantity_on_hand: StockQuantity


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfirmedLine:
    line_number: LineNumber
    article_number: ArticleNumber
    quantity: Quantity
    delivery_date: date
    billing_form: BillingForm
    individual_number: IndividualNumber | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StatusLine:
    line_number: LineNumber
    article_number: ArticleNumber
    quantity: Quantity
    status: OrderStatus
    delivery_date: date | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class InvoiceLine:
    order_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    article_number: ArticleNumber
    article_name: Name
    billing_form: BillingForm
    quantity: InvoiceQuantity  # negative on a credit line only (1.1)
    unit_price: Decimal
    amount: Decimal
    delivered_on: date | None = None
    unit_hsa_id: HsaId | None = None
    individual_number: IndividualNumber | None = None  # the rented device's serial number (1.1)
    # 1.1: the days a rental line charges for (both inclusive), and on a credit line the invoice it credits.
    rental_from: date | None = None
    rental_to: date | None = None
    credits_invoice: Reference | None = None
    cost_centre: Code | None = None  # the order's cost centre, so the region's finance can allocate the line (1.1)


@dataclass(frozen=True, kw_only=True, slots=True)
class Article:
    article_number: ArticleNumber
    supplier_article_number: Code
    supplier_gln: Gln
    name: Name
    iso9999: Iso9999Code
    article_type: ArticleType
    price: Decimal
    status: ArticleStatus
    agreement_reference: Code | None = None
    image_url: Url | None = None
    manual_url: Url | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """One reason a message was refused: the rule broken, where, and the offending value (masked)."""

    rule: Code
    message: Description
    path: Line | None = None
    line: int | None = None
    value: Line | None = None


# ---------------------------------------------------------------- customer system -> HMC


@dataclass(frozen=True, kw_only=True, slots=True)
class CustomerOrder(Message):
    """Kundorder: a patient order, or an order to a buffer store outside automatic replenishment."""

    direction = Direction.INBOUND
    order_id: Reference
    priority: Priority
    prescriber: Prescriber
    delivery: Address
    lines: Annotated[list[OrderLine], Items(1, 999)]
    orderer: Person | None = None
    patient: Patient | None = None  # absent on orders to a buffer store
    requested_delivery_date: date | None = None
    note: Description | None = None
    cost_centre: Code | None = None  # the orderer's cost centre (kostnadsställe) to charge (1.1)


@dataclass(frozen=True, kw_only=True, slots=True)
class BufferWithdrawal(Message):
    """Uttag ur buffertförråd: an article taken from a buffer store and registered on a patient."""

    direction = Direction.INBOUND
    withdrawal_id: Reference
    buffer_store_id: Reference
    withdrawn_at: datetime
    prescriber: Prescriber
    patient: Patient
    lines: Annotated[list[DeviceLine], Items(1, 999)]


@dataclass(frozen=True, kw_only=True, slots=True)
class BufferStockReport(Message):
    """Lagersaldo buffertförråd: stock levels of a buffer store."""

    direction = Direction.INBOUND
    buffer_store_id: Reference
    counted_at: datetime
    items: Annotated[list[StockItem], Items(1, 9999)]


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkOrder(Message):
    """Arbetsorder: maintenance, adaptation, assembly, installation or consultation on a device."""

    direction = Direction.INBOUND
    work_order_id: Reference
    kind: WorkOrderKind
    priority: Priority
    prescriber: Prescriber
    article_number: ArticleNumber
    description: Description
    individual_number: IndividualNumber | None = None
    patient: Patient | None = None
    address: Address | None = None
    requested_date: date | None = None
    infection_risk: bool | None = None  # smittrisk: the technician takes precautions (1.1)
    cost_centre: Code | None = None  # the kostnadsställe a chargeable work order is charged to (1.1)


@dataclass(frozen=True, kw_only=True, slots=True)
class PickupOrder(Message):
    """Hämtorder: collect devices from a patient."""

    direction = Direction.INBOUND
    pickup_id: Reference
    orderer: Person
    patient: Patient
    address: Address
    devices: Annotated[list[DeviceLine], Items(1, 999)]
    requested_date: date | None = None
    note: Description | None = None
    infection_risk: bool | None = None  # smittrisk: the driver takes precautions, the devices are cleaned apart (1.1)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReturnReceipt(Message):
    """Återlämningskvitto: created at the patient when devices are handed back."""

    direction = Direction.INBOUND
    receipt_id: Reference
    pickup_id: Reference
    returned_at: datetime
    patient: Patient
    received_by: Name
    devices: Annotated[list[DeviceLine], Items(1, 999)]


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultReport(Message):
    """Felrapport: a fault on a product or a service."""

    direction = Direction.INBOUND
    report_id: Reference
    subject: FaultSubject
    reporter: Person
    answer_requested: bool
    description: Description
    article_number: ArticleNumber | None = None
    individual_number: IndividualNumber | None = None
    patient: Patient | None = None
    incident: Incident | None = None  # avvikelse: the fault caused or could have caused harm (1.1)


@dataclass(frozen=True, kw_only=True, slots=True)
class OrthopaedicReferral(Message):
    """OT-remiss: referral to orthopaedic technical services; acute ones go on paper in an outage."""

    direction = Direction.INBOUND
    referral_id: Reference
    acute: bool
    prescriber: Prescriber
    patient: Patient
    requested_service: Line
    clinical_information: Description
    requested_date: date | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderWithdrawal(Message):
    """Återkallelse (1.1): the customer system withdraws an order it sent; SESAM2 answers with OrderCancelled."""

    direction = Direction.INBOUND
    order_id: Reference
    reason: CancellationReason
    note: Line | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderStatusQuery(Message):
    """Sökning: "where is my order", answered by the broker from its order view."""

    direction = Direction.INBOUND
    order_id: Reference


@dataclass(frozen=True, kw_only=True, slots=True)
class PatientAddressReply(Message):
    """The customer system's answer to SESAM2's PatientAddressQuery."""

    direction = Direction.INBOUND
    query_id: Reference
    patient: Patient
    address: Address
    valid_from: date | None = None


# ---------------------------------------------------------------- HMC -> customer system


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderStatusReply(Message):
    direction = Direction.OUTBOUND
    order_id: Reference
    status: OrderStatus
    updated_at: datetime
    lines: Annotated[list[StatusLine], Items(0, 999)] = field(default_factory=list)
    sesam2_order_number: Sesam2OrderNumber | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderConfirmation(Message):
    """Orderbekräftelse: per line, with delivery date."""

    direction = Direction.OUTBOUND
    order_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    lines: Annotated[list[ConfirmedLine], Items(1, 999)]


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryDelay(Message):
    """Leveransförsening: a new expected date and why; no line number means the whole order."""

    direction = Direction.OUTBOUND
    order_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    new_delivery_date: date
    reason: DelayReason
    line_number: LineNumber | None = None
    note: Line | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderCancelled(Message):
    """Makulering: the order cannot be delivered; a new order must be placed."""

    direction = Direction.OUTBOUND
    order_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    reason: CancellationReason
    line_number: LineNumber | None = None
    note: Line | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryReceipt(Message):
    """Kvitterad leverans: signed delivery at the patient's residence."""

    direction = Direction.OUTBOUND
    order_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    delivered_at: datetime
    signed_by: Name
    lines: Annotated[list[DeviceLine], Items(1, 999)]


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryNote(Message):
    """Följesedel: delivery to a buffer store."""

    direction = Direction.OUTBOUND
    order_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    buffer_store_id: Reference
    shipped_at: datetime
    lines: Annotated[list[DeviceLine], Items(1, 999)]


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkOrderCompleted(Message):
    direction = Direction.OUTBOUND
    work_order_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    completed_at: datetime
    action_taken: Description
    technician: Name | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkOrderCancelled(Message):
    direction = Direction.OUTBOUND
    work_order_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    reason: CancellationReason
    note: Line | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PickupConfirmation(Message):
    direction = Direction.OUTBOUND
    pickup_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    pickup_date: date
    time_window: Code | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class OrthopaedicReferralAnswer(Message):
    """Svar på OT-remiss (1.1): when and where orthopaedic technical services see the patient."""

    direction = Direction.OUTBOUND
    referral_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    answer: Description
    appointment_at: datetime | None = None
    clinic: Name | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PickupCancelled(Message):
    direction = Direction.OUTBOUND
    pickup_id: Reference
    sesam2_order_number: Sesam2OrderNumber
    reason: CancellationReason
    note: Line | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class FaultReportAnswer(Message):
    """Only sent when the reporter asked for an answer."""

    direction = Direction.OUTBOUND
    report_id: Reference
    answered_at: datetime
    answered_by: Name
    answer: Description


@dataclass(frozen=True, kw_only=True, slots=True)
class InvoiceData(Message):
    """Fakturaunderlag: monthly, per customer; only for consumers with invoice permission."""

    direction = Direction.OUTBOUND
    invoice_number: Reference
    period: Month
    total_amount: Decimal
    lines: Annotated[list[InvoiceLine], Items(1, 99999)]


@dataclass(frozen=True, kw_only=True, slots=True)
class ArticleRegisterUpdate(Message):
    """Artikelregister: broadcast to every customer system."""

    direction = Direction.OUTBOUND
    valid_from: date
    articles: Annotated[list[Article], Items(1, 9999)]


@dataclass(frozen=True, kw_only=True, slots=True)
class PatientAddressQuery(Message):
    """Adressfråga: SESAM2 asks the customer system that owns the patient for the current address."""

    direction = Direction.OUTBOUND
    query_id: Reference
    patient_id: PatientId
    requested_by: Person | None = None  # the HMC user who asks (1.1): the customer's staff know whom to answer


@dataclass(frozen=True, kw_only=True, slots=True)
class Rejection(Message):
    """Avvisning: an inbound message the broker could not accept, with every reason."""

    direction = Direction.OUTBOUND
    received_at: datetime
    problems: Annotated[list[Problem], Items(1, 999)]
    rejected_message_id: MessageId | None = None
    rejected_type: Code | None = None


INBOUND_TYPES: tuple[type[Message], ...] = (
    CustomerOrder,
    BufferWithdrawal,
    BufferStockReport,
    WorkOrder,
    PickupOrder,
    ReturnReceipt,
    FaultReport,
    OrthopaedicReferral,
    OrderStatusQuery,
    PatientAddressReply,
    OrderWithdrawal,
)
OUTBOUND_TYPES: tuple[type[Message], ...] = (
    OrderStatusReply,
    OrderConfirmation,
    DeliveryDelay,
    OrderCancelled,
    DeliveryReceipt,
    DeliveryNote,
    WorkOrderCompleted,
    WorkOrderCancelled,
    PickupConfirmation,
    PickupCancelled,
    FaultReportAnswer,
    OrthopaedicReferralAnswer,
    InvoiceData,
    ArticleRegisterUpdate,
    PatientAddressQuery,
    Rejection,
)
MESSAGE_TYPES: dict[str, type[Message]] = {cls.__name__: cls for cls in INBOUND_TYPES + OUTBOUND_TYPES}


def patient_id_of(message: Message | None) -> str | None:
    """The patient a message is about, if any (the store keeps it only as a keyed hash: patient_ref)."""
    patient = getattr(message, "patient", None)
    value = patient.patient_id if patient is not None else getattr(message, "patient_id", None)
    return str(value) if value else None
