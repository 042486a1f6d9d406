"""The mapping table: every message type, field by field, in the customer dialect and in SESAM2's.

This is the one place that knows element names. Parsing, rendering, translation, the XSDs under
schemas/ and the mapping table in schemas/README.md are all derived from it.

Customer dialect: nested, English, ISO 8601 dates, code-list tokens.
SESAM2 dialect: an ERP record layout: CTRL (control record), HEAD (flattened header with patient,
persons and delivery address), repeated flat ROW records, compact local date-times, short codes,
amounts in öre.
"""

from __future__ import annotations

from broker.contract.spec import F, G, R, Spec, TypeMap
from broker.model import messages as m
from broker.model.codes import (
    AddressKind,
    ArticleStatus,
    ArticleType,
    BillingForm,
    CancellationReason,
    DelayReason,
    FaultSubject,
    Incident,
    OrderStatus,
    Priority,
    Profession,
    WorkOrderKind,
)
from broker.model.types import Quantity

# ---------------------------------------------------------------- SESAM2 code lists

SESAM2_CODES: dict[type, dict[str, str]] = {
    Priority: {Priority.NORMAL: "N", Priority.URGENT: "B", Priority.ACUTE: "A"},
    AddressKind: {
        AddressKind.PATIENT_RESIDENCE: "BOST",
        AddressKind.UNIT: "ENH",
        AddressKind.BUFFER_STORE: "BUFF",
    },
    WorkOrderKind: {
        WorkOrderKind.CORRECTIVE_MAINTENANCE: "AU",  # avhjälpande underhåll
        WorkOrderKind.ADAPTATION: "AN",  # anpassning
        WorkOrderKind.SPECIAL_ADAPTATION: "SA",  # specialanpassning
        WorkOrderKind.ASSEMBLY: "MO",  # montering
        WorkOrderKind.INSTALLATION: "IN",  # installation
        WorkOrderKind.CONSULTATION: "KO",  # konsultation
    },
    ArticleType: {ArticleType.MAIN_AID: "HJM", ArticleType.ACCESSORY: "TILL", ArticleType.SPARE_PART: "RESD"},
    BillingForm: {BillingForm.RENTAL: "HYR", BillingForm.SALE_WITH_RETURN: "FMA", BillingForm.SALE: "FSG"},
    CancellationReason: {
        CancellationReason.ARTICLE_DISCONTINUED: "UTG",
        CancellationReason.NOT_DELIVERABLE: "EJLEV",
        CancellationReason.DUPLICATE_ORDER: "DUBB",
        CancellationReason.CUSTOMER_REQUEST: "KUND",
        CancellationReason.PATIENT_DECEASED: "AVL",
        CancellationReason.OTHER: "OVR",
    },
    DelayReason: {
        DelayReason.SUPPLIER_DELAY: "LEVF",
        DelayReason.OUT_OF_STOCK: "REST",
        DelayReason.TRANSPORT: "TRSP",
        DelayReason.ADAPTATION_NEEDED: "ANP",
        DelayReason.OTHER: "OVR",
    },
    FaultSubject: {FaultSubject.PRODUCT: "PROD", FaultSubject.SERVICE: "TJST"},
    Profession: {
        Profession.OCCUPATIONAL_THERAPIST: "AT",  # arbetsterapeut
        Profession.PHYSIOTHERAPIST: "FT",  # fysioterapeut
        Profession.NURSE: "SSK",  # sjuksköterska
        Profession.DISTRICT_NURSE: "DSK",  # distriktssköterska
        Profession.DOCTOR: "LAK",  # läkare
        Profession.SPEECH_THERAPIST: "LOG",  # logoped
        Profession.AUDIOLOGIST: "AUD",  # audionom
        Profession.OPTICIAN: "OPT",  # optiker
        Profession.OTHER: "OVR",
    },
    Incident: {Incident.NEAR_MISS: "TILLB", Incident.INJURY: "SKADA"},  # tillbud, negativ händelse
    ArticleStatus: {ArticleStatus.ACTIVE: "A", ArticleStatus.WITHDRAWN: "U"},
    OrderStatus: {s: s.name[:4] for s in OrderStatus},  # not exchanged with SESAM2; listed for completeness
}

# ---------------------------------------------------------------- shared parts

HEADER = G(
    "header",
    "Header",
    "CTRL",
    (
        F("message_id", "MessageId", "MSGID"),
        F("message_type", "MessageType", "MSGTYP"),
        F("schema_version", "SchemaVersion", "VERSION"),
        F("sent_at", "SentAt", "SKAPAD"),
        F("sender_system", "SenderSystem", "AVSSYS"),
        F("customer_number", "CustomerNumber", "KUNDNR"),
        F("unit_hsa_id", "SendingUnit", "AVSENH"),
        F("correlation_id", "CorrelationId", "REFID"),
        F("causation_id", "CausationId", "ORSAKID"),
        # SESAM2 dialect only (no customer element): SKAPAD/AVSSYS stay the sender's, this is the broker's time.
        F("forwarded_at", "", "FORMEDLAD"),
    ),
)


def person(attr: str, element: str, prefix: str, *more: F, since: str = "1.0") -> G:
    """A person in HSA terms; SESAM2 flattens it into HEAD with a role prefix (FSK, BEST, RAPP, HANDL)."""
    return G(
        attr,
        element,
        "",
        (
            F("hsa_id", "HsaId", f"{prefix}HSA"),
            F("name", "Name", f"{prefix}NAMN"),
            F("phone", "Phone", f"{prefix}TEL"),
            *more,
        ),
        since,
    )


# The prescriber (förskrivare) with what the region knows them by: förskrivarkod and profession (1.1).
PRESCRIBER = person(
    "prescriber",
    "Prescriber",
    "FSK",
    F("prescriber_code", "PrescriberCode", "FSKKOD", since="1.1"),
    F("profession", "Profession", "FSKYRKE", since="1.1"),
)

PATIENT = G(
    "patient",
    "Patient",
    "",
    (
        F("patient_id", "PatientId", "PATNR"),
        F("name", "Name", "PATNAMN"),
        F("protected", "ProtectedIdentity", "PATSKYDD", since="1.1"),
        # Folkbokföring (1.1): the registered address, as distinct from where the patient stays (the delivery
        # or pickup address), and the home municipality that pays (SCB's kommunkod).
        G(
            "registered_address",
            "RegisteredAddress",
            "",
            (
                F("care_of", "CareOf", "PATFBCO"),
                F("street", "Street", "PATFBGATA"),
                F("postal_code", "PostalCode", "PATFBPOSTNR"),
                F("city", "City", "PATFBORT"),
            ),
            since="1.1",
        ),
        F("home_municipality", "HomeMunicipality", "PATKOMMUN", since="1.1"),
    ),
)


def address(attr: str, element: str, prefix: str) -> G:
    return G(
        attr,
        element,
        "",
        (
            F("kind", "Kind", f"{prefix}TYP"),
            F("name", "Name", f"{prefix}NAMN"),
            F("street", "Street", f"{prefix}GATA"),
            F("postal_code", "PostalCode", f"{prefix}POSTNR"),
            F("city", "City", f"{prefix}ORT"),
            F("buffer_store_id", "BufferStoreId", f"{prefix}BUFF"),
            F("phone", "Phone", f"{prefix}TEL"),
            F("instructions", "Instructions", f"{prefix}INSTR"),
        ),
    )


def device_lines(attr: str, customer: str) -> R:
    return R(
        attr,
        customer,
        "ROW",
        (
            F("line_number", "LineNumber", "RADNR"),
            F("article_number", "ArticleNumber", "ARTNR"),
            F("quantity", "Quantity", "ANTAL"),
            F("individual_number", "IndividualNumber", "INDNR"),
        ),
    )


def head(*fields: Spec) -> G:
    """Body fields sit directly under the root in the customer dialect and in HEAD in SESAM2's.

    Modelled as a group on the message itself (attr ''), so the table reads in document order.
    """
    return G("", "", "HEAD", fields)


# ---------------------------------------------------------------- customer system -> HMC

INBOUND: tuple[TypeMap, ...] = (
    TypeMap(
        m.CustomerOrder,
        "CustomerOrder",
        "ORDERS",
        (
            HEADER,
            head(
                F("order_id", "OrderId", "EXTORDNR"),
                F("priority", "Priority", "PRIO"),
                F("requested_delivery_date", "RequestedDeliveryDate", "ONSKLEVDAT"),
                PRESCRIBER,
                person("orderer", "Orderer", "BEST"),
                PATIENT,
                address("delivery", "DeliveryAddress", "LEV"),
                F("note", "Note", "MEDDELANDE"),
                F("cost_centre", "CostCentre", "KOSTNST", since="1.1"),
            ),
            R(
                "lines",
                "Lines/Line",
                "ROW",
                (
                    F("line_number", "LineNumber", "RADNR"),
                    F("article_number", "ArticleNumber", "ARTNR"),
                    F("quantity", "Quantity", "ANTAL"),
                    F("article_type", "ArticleType", "ARTTYP"),
                    F("iso9999", "Iso9999Code", "ISOKOD"),
                    F("comment", "Comment", "RADTEXT"),
                ),
            ),
        ),
    ),
    TypeMap(
        m.BufferWithdrawal,
        "BufferWithdrawal",
        "BUFUTTAG",
        (
            HEADER,
            head(
                F("withdrawal_id", "WithdrawalId", "EXTORDNR"),
                F("buffer_store_id", "BufferStoreId", "BUFFNR"),
                F("withdrawn_at", "WithdrawnAt", "UTTAGTID"),
                PRESCRIBER,
                PATIENT,
            ),
            device_lines("lines", "Lines/Line"),
        ),
    ),
    TypeMap(
        m.BufferStockReport,
        "BufferStockReport",
        "BUFSALDO",
        (
            HEADER,
            head(F("buffer_store_id", "BufferStoreId", "BUFFNR"), F("counted_at", "CountedAt", "INVTID")),
            R(
                "items",
                "Items/Item",
                "ROW",
                (
                    F("article_number", "ArticleNumber", "ARTNR"),
                    F("quantity_on_hand", "QuantityOnHand", "SALDO"),
                ),
            ),
        ),
    ),
    TypeMap(
        m.WorkOrder,
        "WorkOrder",
        "ARBORDER",
        (
            HEADER,
            head(
                F("work_order_id", "WorkOrderId", "EXTORDNR"),
                F("kind", "Kind", "AOTYP"),
                F("priority", "Priority", "PRIO"),
                F("requested_date", "RequestedDate", "ONSKDAT"),
                PRESCRIBER,
                PATIENT,
                F("article_number", "ArticleNumber", "ARTNR"),
                F("individual_number", "IndividualNumber", "INDNR"),
                address("address", "Address", "UTF"),
                F("description", "Description", "BESKRIVNING"),
                F("infection_risk", "InfectionRisk", "SMITTA", since="1.1"),
                F("cost_centre", "CostCentre", "KOSTNST", since="1.1"),
            ),
        ),
    ),
    TypeMap(
        m.PickupOrder,
        "PickupOrder",
        "HAMTORDER",
        (
            HEADER,
            head(
                F("pickup_id", "PickupId", "EXTORDNR"),
                F("requested_date", "RequestedDate", "ONSKDAT"),
                person("orderer", "Orderer", "BEST"),
                PATIENT,
                address("address", "PickupAddress", "HAMT"),
                F("note", "Note", "MEDDELANDE"),
                F("infection_risk", "InfectionRisk", "SMITTA", since="1.1"),
            ),
            device_lines("devices", "Devices/Device"),
        ),
    ),
    TypeMap(
        m.ReturnReceipt,
        "ReturnReceipt",
        "RETURKVITTO",
        (
            HEADER,
            head(
                F("receipt_id", "ReceiptId", "KVITTONR"),
                F("pickup_id", "PickupId", "EXTORDNR"),
                F("returned_at", "ReturnedAt", "RETURTID"),
                PATIENT,
                F("received_by", "ReceivedBy", "MOTTAGARE"),
            ),
            device_lines("devices", "Devices/Device"),
        ),
    ),
    TypeMap(
        m.FaultReport,
        "FaultReport",
        "FELRAPPORT",
        (
            HEADER,
            head(
                F("report_id", "ReportId", "EXTRAPPNR"),
                F("subject", "Subject", "AVSER"),
                person("reporter", "Reporter", "RAPP"),
                F("answer_requested", "AnswerRequested", "SVARONSKAS"),
                F("article_number", "ArticleNumber", "ARTNR"),
                F("individual_number", "IndividualNumber", "INDNR"),
                PATIENT,
                F("description", "Description", "FELBESKR"),
                F("incident", "Incident", "AVVIKELSE", since="1.1"),
            ),
        ),
    ),
    TypeMap(
        m.OrthopaedicReferral,
        "OrthopaedicReferral",
        "OTREMISS",
        (
            HEADER,
            head(
                F("referral_id", "ReferralId", "EXTREMNR"),
                F("acute", "Acute", "AKUT"),
                F("requested_date", "RequestedDate", "ONSKDAT"),
                PRESCRIBER,
                PATIENT,
                F("requested_service", "RequestedService", "TJANST"),
                F("clinical_information", "ClinicalInformation", "KLININFO"),
            ),
        ),
    ),
    TypeMap(m.OrderStatusQuery, "OrderStatusQuery", None, (HEADER, head(F("order_id", "OrderId", "")))),
    TypeMap(
        m.OrderWithdrawal,
        "OrderWithdrawal",
        "ORDERATER",
        (
            HEADER,
            head(
                F("order_id", "OrderId", "EXTORDNR"),
                F("reason", "Reason", "ORSAK"),
                F("note", "Note", "TEXT"),
            ),
        ),
        since="1.1",
    ),
    TypeMap(
        m.PatientAddressReply,
        "PatientAddressReply",
        "ADRSVAR",
        (
            HEADER,
            head(
                F("query_id", "QueryId", "FRAGANR"),
                F("valid_from", "ValidFrom", "GILTIGFROM"),
                PATIENT,
                address("address", "Address", "ADR"),
            ),
        ),
    ),
)

# ---------------------------------------------------------------- HMC -> customer system


def order_answer(*fields: Spec) -> G:
    """HEAD of an answer about an order: the customer's order id and SESAM2's order number first."""
    return head(F("order_id", "OrderId", "EXTORDNR"), F("sesam2_order_number", "HmcOrderNumber", "ORDNR"), *fields)


OUTBOUND: tuple[TypeMap, ...] = (
    TypeMap(
        m.OrderStatusReply,
        "OrderStatusReply",
        None,
        (
            HEADER,
            head(
                F("order_id", "OrderId", ""),
                F("sesam2_order_number", "HmcOrderNumber", ""),
                F("status", "Status", ""),
                F("updated_at", "UpdatedAt", ""),
            ),
            R(
                "lines",
                "Lines/Line",
                "",
                (
                    F("line_number", "LineNumber", ""),
                    F("article_number", "ArticleNumber", ""),
                    F("quantity", "Quantity", ""),
                    F("status", "Status", ""),
                    F("delivery_date", "DeliveryDate", ""),
                ),
            ),
        ),
    ),
    TypeMap(
        m.OrderConfirmation,
        "OrderConfirmation",
        "ORDERBEKR",
        (
            HEADER,
            order_answer(),
            R(
                "lines",
                "Lines/Line",
                "ROW",
                (
                    F("line_number", "LineNumber", "RADNR"),
                    F("article_number", "ArticleNumber", "ARTNR"),
                    F("quantity", "Quantity", "ANTAL"),
                    F("delivery_date", "DeliveryDate", "LEVDAT"),
                    F("billing_form", "BillingForm", "DEBFORM"),
                    F("individual_number", "IndividualNumber", "INDNR"),
                ),
            ),
        ),
    ),
    TypeMap(
        m.DeliveryDelay,
        "DeliveryDelay",
        "LEVFORSEN",
        (
            HEADER,
            order_answer(
                F("line_number", "LineNumber", "RADNR"),
                F("new_delivery_date", "NewDeliveryDate", "NYLEVDAT"),
                F("reason", "Reason", "ORSAK"),
                F("note", "Note", "TEXT"),
            ),
        ),
    ),
    TypeMap(
        m.OrderCancelled,
        "OrderCancelled",
        "ORDERMAK",
        (
            HEADER,
            order_answer(
                F("line_number", "LineNumber", "RADNR"),
                F("reason", "Reason", "ORSAK"),
                F("note", "Note", "TEXT"),
            ),
        ),
    ),
    TypeMap(
        m.OrthopaedicReferralAnswer,
        "OrthopaedicReferralAnswer",
        "OTSVAR",
        (
            HEADER,
            head(
                F("referral_id", "ReferralId", "EXTREMNR"),
                F("sesam2_order_number", "HmcOrderNumber", "ORDNR"),
                F("appointment_at", "AppointmentAt", "BESOKTID"),
                F("clinic", "Clinic", "MOTTAGNING"),
                F("answer", "Answer", "SVAR"),
            ),
        ),
        since="1.1",
    ),
    TypeMap(
        m.DeliveryReceipt,
        "DeliveryReceipt",
        "LEVKVITTO",
        (
            HEADER,
            order_answer(F("delivered_at", "DeliveredAt", "LEVTID"), F("signed_by", "SignedBy", "SIGNERAD")),
            device_lines("lines", "Lines/Line"),
        ),
    ),
    TypeMap(
        m.DeliveryNote,
        "DeliveryNote",
        "FOLJESEDEL",
        (
            HEADER,
            order_answer(F("buffer_store_id", "BufferStoreId", "BUFFNR"), F("shipped_at", "ShippedAt", "UTLEVTID")),
            device_lines("lines", "Lines/Line"),
        ),
    ),
    TypeMap(
        m.WorkOrderCompleted,
        "WorkOrderCompleted",
        "ARBKLAR",
        (
            HEADER,
            head(
                F("work_order_id", "WorkOrderId", "EXTORDNR"),
                F("sesam2_order_number", "HmcOrderNumber", "ORDNR"),
                F("completed_at", "CompletedAt", "KLARTID"),
                F("technician", "Technician", "TEKNIKER"),
                F("action_taken", "ActionTaken", "ATGARD"),
            ),
        ),
    ),
    TypeMap(
        m.WorkOrderCancelled,
        "WorkOrderCancelled",
        "ARBMAK",
        (
            HEADER,
            head(
                F("work_order_id", "WorkOrderId", "EXTORDNR"),
                F("sesam2_order_number", "HmcOrderNumber", "ORDNR"),
                F("reason", "Reason", "ORSAK"),
                F("note", "Note", "TEXT"),
            ),
        ),
    ),
    TypeMap(
        m.PickupConfirmation,
        "PickupConfirmation",
        "HAMTBEKR",
        (
            HEADER,
            head(
                F("pickup_id", "PickupId", "EXTORDNR"),
                F("sesam2_order_number", "HmcOrderNumber", "ORDNR"),
                F("pickup_date", "PickupDate", "HAMTDAT"),
                F("time_window", "TimeWindow", "TIDSFONSTER"),
            ),
        ),
    ),
    TypeMap(
        m.PickupCancelled,
        "PickupCancelled",
        "HAMTMAK",
        (
            HEADER,
            head(
                F("pickup_id", "PickupId", "EXTORDNR"),
                F("sesam2_order_number", "HmcOrderNumber", "ORDNR"),
                F("reason", "Reason", "ORSAK"),
                F("note", "Note", "TEXT"),
            ),
        ),
    ),
    TypeMap(
        m.FaultReportAnswer,
        "FaultReportAnswer",
        "FELSVAR",
        (
            HEADER,
            head(
                F("report_id", "ReportId", "EXTRAPPNR"),
                F("answered_at", "AnsweredAt", "SVARTID"),
                F("answered_by", "AnsweredBy", "HANDLAGGARE"),
                F("answer", "Answer", "SVAR"),
            ),
        ),
    ),
    TypeMap(
        m.InvoiceData,
        "InvoiceData",
        "FAKTUNDERLAG",
        (
            HEADER,
            head(
                F("invoice_number", "InvoiceNumber", "FAKTNR"),
                F("period", "Period", "PERIOD"),
                F("total_amount", "TotalAmount", "SUMMAORE"),
            ),
            R(
                "lines",
                "Lines/Line",
                "ROW",
                (
                    F("order_id", "OrderId", "EXTORDNR"),
                    F("sesam2_order_number", "HmcOrderNumber", "ORDNR"),
                    F("article_number", "ArticleNumber", "ARTNR"),
                    F("article_name", "ArticleName", "BENAMNING"),
                    F("billing_form", "BillingForm", "DEBFORM"),
                    F("quantity", "Quantity", "ANTAL", before=("1.1", Quantity)),
                    F("unit_price", "UnitPrice", "APRISORE"),
                    F("amount", "Amount", "BELOPPORE"),
                    F("delivered_on", "DeliveredOn", "LEVDAT"),
                    F("unit_hsa_id", "UnitHsaId", "ENHHSA"),
                    F("individual_number", "IndividualNumber", "INDNR", since="1.1"),
                    F("rental_from", "RentalFrom", "HYRFROM", since="1.1"),
                    F("rental_to", "RentalTo", "HYRTOM", since="1.1"),
                    F("credits_invoice", "CreditsInvoice", "KREDITERAR", since="1.1"),
                    F("cost_centre", "CostCentre", "KOSTNST", since="1.1"),
                ),
            ),
        ),
    ),
    TypeMap(
        m.ArticleRegisterUpdate,
        "ArticleRegisterUpdate",
        "ARTREG",
        (
            HEADER,
            head(F("valid_from", "ValidFrom", "GILTIGFROM")),
            R(
                "articles",
                "Articles/Article",
                "ROW",
                (
                    F("article_number", "ArticleNumber", "ARTNR"),
                    F("supplier_article_number", "SupplierArticleNumber", "LEVARTNR"),
                    F("supplier_gln", "SupplierGln", "LEVGLN"),
                    F("name", "Name", "BENAMNING"),
                    F("iso9999", "Iso9999Code", "ISOKOD"),
                    F("article_type", "ArticleType", "ARTTYP"),
                    F("price", "Price", "PRISORE"),
                    F("status", "Status", "STATUS"),
                    F("agreement_reference", "AgreementReference", "AVTAL"),
                    F("image_url", "ImageUrl", "BILDURL"),
                    F("manual_url", "ManualUrl", "MANUALURL"),
                ),
            ),
        ),
    ),
    TypeMap(
        m.PatientAddressQuery,
        "PatientAddressQuery",
        "ADRFRAGA",
        (
            HEADER,
            head(
                F("query_id", "QueryId", "FRAGANR"),
                F("patient_id", "PatientId", "PATNR"),
                person("requested_by", "RequestedBy", "HANDL", since="1.1"),  # the HMC user who asks
            ),
        ),
    ),
    TypeMap(
        m.Rejection,
        "Rejection",
        None,
        (
            HEADER,
            head(
                F("rejected_message_id", "RejectedMessageId", ""),
                F("rejected_type", "RejectedType", ""),
                F("received_at", "ReceivedAt", ""),
            ),
            R(
                "problems",
                "Problems/Problem",
                "",
                (
                    F("rule", "Rule", ""),
                    F("path", "Path", ""),
                    F("line", "Line", ""),
                    F("value", "Value", ""),
                    F("message", "Message", ""),
                ),
            ),
        ),
    ),
)

TYPE_MAPS: dict[type[m.Message], TypeMap] = {t.cls: t for t in INBOUND + OUTBOUND}
