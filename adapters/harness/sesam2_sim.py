"""SESAM2's behaviour, without any transport: what it answers to each message it receives.

`Sesam2Simulator.answer(message)` takes a message as SESAM2 receives it (parsed from the SESAM2
dialect, i.e. after the broker's forward()) and returns SESAM2's answers as model objects, to be rendered
in the SESAM2 dialect. Every decision and every value comes from an rng seeded by (seed, purpose, the
inbound message id), and business dates count from the inbound message's sent_at, so the answers to a
message are a function of the message alone (only their sent_at is "now"): a redelivered message gets
the same answers with the same ids, and consumers de-duplicate them as they would SESAM2's own resends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from adapters.catalog_file import DEMO_CATALOG, load_catalog
from adapters.harness import synthetic as syn
from adapters.harness import texts
from adapters.harness.generator import STOCKHOLM, stockholm_time
from broker.catalog import Catalog
from broker.contract import routing
from broker.contract.dialect import speaks
from broker.model import messages as m
from broker.model.codes import AddressKind, ArticleType, BillingForm, CancellationReason, DelayReason, Priority
from broker.translation import derived_id

SENDER_SYSTEM = "SESAM2"
CENT = Decimal("0.01")

# SESAM2 numbers its own orders in series by kind (as its number ranges in an ERP would).
_SERIES: dict[type[m.Message], str] = {
    m.CustomerOrder: "41",
    m.BufferWithdrawal: "45",
    m.PickupOrder: "63",
    m.WorkOrder: "72",
    m.OrthopaedicReferral: "81",
}
_REFERRAL_ANSWER = m.OrthopaedicReferralAnswer
Order = m.CustomerOrder | m.BufferWithdrawal


@dataclass(frozen=True)
class Behaviour:
    """How SESAM2 answers; each ratio is a probability between 0 and 1."""

    cancel_ratio: float = 0.03  # orders, work orders and pickups SESAM2 cancels instead of taking on
    confirm_ratio: float = 0.97  # of the orders not cancelled: confirmed now (the rest wait, unanswered)
    delay_ratio: float = 0.15  # of the confirmed orders: a DeliveryDelay follows
    receipt_ratio: float = 0.9  # of confirmed home and buffer-store deliveries: the receipt / note follows at once
    line_delay_ratio: float = 0.5  # of the delays: about one line (else the whole order)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{f.name} must be between 0 and 1, not {value}")


@dataclass(frozen=True)
class DeliveredLine:
    """One delivered order line, as SESAM2 bills it at the end of the month."""

    order_id: str
    sesam2_order_number: str
    article_number: str
    quantity: int
    billing_form: BillingForm
    delivered_on: date | None = None
    unit_hsa_id: str | None = None
    unit_price: Decimal | None = None  # None: the catalog's price


def sesam2_order_number(message: m.Message) -> str:
    """SESAM2's 10-digit number for the order `message` opens, stable for the same customer and order."""
    reference = routing.reference(message) or message.header.message_id
    digest = hashlib.sha256(f"{message.header.customer_number}/{reference}".encode()).digest()
    return _SERIES.get(type(message), "49") + f"{int.from_bytes(digest[:8], 'big') % 10**8:08d}"


def delivered_lines(confirmation: m.OrderConfirmation, unit_hsa_id: str | None = None) -> list[DeliveredLine]:
    """What a confirmation delivers, to bill in the month of each line's delivery date."""
    return [
        DeliveredLine(
            order_id=confirmation.order_id,
            sesam2_order_number=confirmation.sesam2_order_number,
            article_number=line.article_number,
            quantity=line.quantity,
            billing_form=line.billing_form,
            delivered_on=line.delivery_date,
            unit_hsa_id=unit_hsa_id,
        )
        for line in confirmation.lines
    ]


class Sesam2Simulator:
    def __init__(
        self,
        seed: int = 0,
        behaviour: Behaviour | None = None,
        catalog: Catalog | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.seed = seed
        self.behaviour = behaviour or Behaviour()
        self.catalog = catalog or load_catalog(DEMO_CATALOG)
        self._clock = clock or (lambda: datetime.now(STOCKHOLM))

    # ------------------------------------------------------------ what SESAM2 answers

    def answer(self, message: m.Message, now: datetime | None = None) -> list[m.Message]:
        """SESAM2's answers to one inbound message, in the order it sends them (maybe none)."""
        rng = self._rng(message, "decide")
        b = self.behaviour
        if isinstance(message, m.CustomerOrder):
            if rng.random() < b.cancel_ratio:
                return [self.order_cancelled(message, now=now)]
            if rng.random() >= b.confirm_ratio:
                return []  # still being handled: SESAM2 says nothing yet
            answers: list[m.Message] = [self.order_confirmation(message, now=now)]
            if rng.random() < b.delay_ratio:
                answers.append(self.delivery_delay(message, now=now))
            if rng.random() < b.receipt_ratio:
                if message.delivery.kind is AddressKind.PATIENT_RESIDENCE:
                    answers.append(self.delivery_receipt(message, now=now))
                elif message.delivery.kind is AddressKind.BUFFER_STORE:
                    answers.append(self.delivery_note(message, now=now))
            return answers
        if isinstance(message, m.BufferWithdrawal):
            return [self.order_confirmation(message, now=now)]  # already delivered: SESAM2 registers it
        if isinstance(message, m.WorkOrder):
            cancel = rng.random() < b.cancel_ratio
            return [
                self.work_order_cancelled(message, now=now) if cancel else self.work_order_completed(message, now=now)
            ]
        if isinstance(message, m.PickupOrder):
            cancel = rng.random() < b.cancel_ratio
            return [self.pickup_cancelled(message, now=now) if cancel else self.pickup_confirmation(message, now=now)]
        if isinstance(message, m.FaultReport) and message.answer_requested:
            return [self.fault_report_answer(message, now=now)]
        if isinstance(message, m.OrthopaedicReferral) and speaks(message.header.schema_version, _REFERRAL_ANSWER):
            # The referral's SchemaVersion says what its sender reads: a 1.0 system has no answer type for it
            # (the broker would park one), so SESAM2 answers referrals sent in 1.1 or later.
            return [self.orthopaedic_referral_answer(message, now=now)]
        return []  # 1.0 referrals, return receipts, stock reports, address replies: registered silently

    # ------------------------------------------------------------ answers to orders

    def order_confirmation(self, order: Order, *, now: datetime | None = None) -> m.OrderConfirmation:
        rng = self._rng(order, "confirm")
        if isinstance(order, m.CustomerOrder):
            base = _business_days(order.header.sent_at.astimezone(STOCKHOLM).date(), _lead(rng, order.priority))
            if order.requested_delivery_date and order.requested_delivery_date > base:
                base = order.requested_delivery_date
            lines = [
                m.ConfirmedLine(
                    line_number=line.line_number,
                    article_number=line.article_number,
                    quantity=line.quantity,
                    # A supplier's article may come a few days after what HMC has in stock.
                    delivery_date=_business_days(base, rng.choice((0, 0, 0, 1, 3))),
                    billing_form=(form := _billing_form(rng, line.article_type)),
                    individual_number=_individual(rng) if form is BillingForm.RENTAL and line.quantity == 1 else None,
                )
                for line in order.lines
            ]
        else:
            withdrawn_on = order.withdrawn_at.astimezone(STOCKHOLM).date()
            lines = [
                m.ConfirmedLine(
                    line_number=d.line_number,
                    article_number=d.article_number,
                    quantity=d.quantity,
                    delivery_date=withdrawn_on,
                    billing_form=_billing_form(rng, self._article_type(d.article_number)),
                    individual_number=d.individual_number,
                )
                for d in order.lines
            ]
        return m.OrderConfirmation(
            header=self._header(m.OrderConfirmation, order, now),
            order_id=_reference(order),
            sesam2_order_number=sesam2_order_number(order),
            lines=lines,
        )

    def delivery_delay(
        self,
        order: m.CustomerOrder,
        *,
        reason: DelayReason | None = None,
        days: int | None = None,
        line: int | None = None,
        now: datetime | None = None,
    ) -> m.DeliveryDelay:
        """A later date than confirmed; about one line (`line`, or drawn) or the whole order (line 0)."""
        rng = self._rng(order, "delay")
        confirmed = self.order_confirmation(order, now=now)
        reason = reason or rng.choice(list(DelayReason))
        if line is None:
            one_line = rng.random() < self.behaviour.line_delay_ratio and len(order.lines) > 1
            line = rng.choice(order.lines).line_number if one_line else 0
        known = {c.line_number: c.delivery_date for c in confirmed.lines}
        if line and line not in known:
            raise ValueError(f"order {order.order_id} has no line {line}")
        promised = known[line] if line else max(known.values())
        return m.DeliveryDelay(
            header=self._header(m.DeliveryDelay, order, now),
            order_id=order.order_id,
            sesam2_order_number=confirmed.sesam2_order_number,
            new_delivery_date=_business_days(promised, days or rng.randint(3, 15)),
            reason=reason,
            line_number=line or None,
            note=texts.DELAY_NOTES[reason],
        )

    def order_cancelled(
        self, order: m.CustomerOrder, *, reason: CancellationReason | None = None, now: datetime | None = None
    ) -> m.OrderCancelled:
        rng = self._rng(order, "cancel")
        reason = reason or rng.choice(_CANCEL_REASONS)
        return m.OrderCancelled(
            header=self._header(m.OrderCancelled, order, now),
            order_id=order.order_id,
            sesam2_order_number=sesam2_order_number(order),
            reason=reason,
            note=texts.CANCELLATION_NOTES[reason],
        )

    def delivery_receipt(self, order: m.CustomerOrder, *, now: datetime | None = None) -> m.DeliveryReceipt:
        if order.delivery.kind is not AddressKind.PATIENT_RESIDENCE:
            raise ValueError(f"order {order.order_id} goes to a {order.delivery.kind}, not the patient's residence")
        rng, sent = self._rng(order, "receipt"), self._now(now)
        signer = order.patient.name if order.patient and rng.random() < 0.7 else syn.full_name(rng)
        return m.DeliveryReceipt(
            header=self._header(m.DeliveryReceipt, order, sent),
            order_id=order.order_id,
            sesam2_order_number=sesam2_order_number(order),
            delivered_at=_earlier(sent, rng.randint(10, 180), order),
            signed_by=signer,
            lines=self._delivered(order),
        )

    def delivery_note(self, order: m.CustomerOrder, *, now: datetime | None = None) -> m.DeliveryNote:
        if order.delivery.kind is not AddressKind.BUFFER_STORE or not order.delivery.buffer_store_id:
            raise ValueError(f"order {order.order_id} does not go to a buffer store")
        rng, sent = self._rng(order, "note"), self._now(now)
        return m.DeliveryNote(
            header=self._header(m.DeliveryNote, order, sent),
            order_id=order.order_id,
            sesam2_order_number=sesam2_order_number(order),
            buffer_store_id=order.delivery.buffer_store_id,
            shipped_at=_earlier(sent, rng.randint(30, 600), order),
            lines=self._delivered(order),
        )

    # ------------------------------------------------------------ work orders, pickups, fault reports

    def work_order_completed(self, order: m.WorkOrder, *, now: datetime | None = None) -> m.WorkOrderCompleted:
        rng, sent = self._rng(order, "complete"), self._now(now)
        return m.WorkOrderCompleted(
            header=self._header(m.WorkOrderCompleted, order, sent),
            work_order_id=order.work_order_id,
            sesam2_order_number=sesam2_order_number(order),
            completed_at=_earlier(sent, rng.randint(15, 300), order),
            action_taken=texts.WORK_ORDER_ACTIONS[order.kind],
            technician=syn.full_name(rng) if rng.random() < 0.8 else None,
        )

    def work_order_cancelled(
        self, order: m.WorkOrder, *, reason: CancellationReason | None = None, now: datetime | None = None
    ) -> m.WorkOrderCancelled:
        reason = reason or self._rng(order, "cancel").choice(_CANCEL_REASONS)
        return m.WorkOrderCancelled(
            header=self._header(m.WorkOrderCancelled, order, now),
            work_order_id=order.work_order_id,
            sesam2_order_number=sesam2_order_number(order),
            reason=reason,
            note=texts.CANCELLATION_NOTES[reason],
        )

    def pickup_confirmation(self, pickup: m.PickupOrder, *, now: datetime | None = None) -> m.PickupConfirmation:
        rng = self._rng(pickup, "confirm")
        earliest = _business_days(pickup.header.sent_at.astimezone(STOCKHOLM).date(), rng.randint(2, 7))
        return m.PickupConfirmation(
            header=self._header(m.PickupConfirmation, pickup, now),
            pickup_id=pickup.pickup_id,
            sesam2_order_number=sesam2_order_number(pickup),
            pickup_date=max(earliest, pickup.requested_date or earliest),
            time_window=rng.choice(("08-12", "12-16", None)),
        )

    def pickup_cancelled(
        self, pickup: m.PickupOrder, *, reason: CancellationReason | None = None, now: datetime | None = None
    ) -> m.PickupCancelled:
        reason = reason or self._rng(pickup, "cancel").choice(_CANCEL_REASONS)
        return m.PickupCancelled(
            header=self._header(m.PickupCancelled, pickup, now),
            pickup_id=pickup.pickup_id,
            sesam2_order_number=sesam2_order_number(pickup),
            reason=reason,
            note=texts.CANCELLATION_NOTES[reason],
        )

    def fault_report_answer(self, report: m.FaultReport, *, now: datetime | None = None) -> m.FaultReportAnswer:
        rng, sent = self._rng(report, "answer"), self._now(now)
        return m.FaultReportAnswer(
            header=self._header(m.FaultReportAnswer, report, sent),
            report_id=report.report_id,
            answered_at=sent,
            answered_by=rng.choice(("Kundtjänst HMC", "Teknisk service HMC", syn.full_name(rng))),
            answer=texts.FAULT_ANSWERS[report.subject],
        )

    def orthopaedic_referral_answer(
        self, referral: m.OrthopaedicReferral, *, now: datetime | None = None
    ) -> m.OrthopaedicReferralAnswer:
        """When and where orthopaedic technical services see the patient: an acute referral the next business
        day, a planned one in one to four weeks, never before the date the prescriber asked for."""
        rng, sent = self._rng(referral, "referral"), self._now(now)
        received_on = referral.header.sent_at.astimezone(STOCKHOLM).date()
        day = _business_days(received_on, 1 if referral.acute else rng.randint(5, 20))
        if referral.requested_date and referral.requested_date > day:
            day = _business_days(referral.requested_date, 0)
        hour, minute = rng.choice((8, 9, 10, 11, 13, 14, 15)), rng.choice((0, 15, 30, 45))
        appointment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=STOCKHOLM)
        clinic = rng.choice(texts.OT_CLINICS)
        return m.OrthopaedicReferralAnswer(
            header=self._header(m.OrthopaedicReferralAnswer, referral, sent),
            referral_id=referral.referral_id,
            sesam2_order_number=sesam2_order_number(referral),
            answer=texts.REFERRAL_ANSWERS[referral.acute].format(service=referral.requested_service, clinic=clinic),
            appointment_at=appointment,
            clinic=clinic,
        )

    # ------------------------------------------------------------ what SESAM2 sends on its own

    def article_register_update(
        self, catalog: Catalog | None = None, *, valid_from: date | None = None, now: datetime | None = None
    ) -> m.ArticleRegisterUpdate:
        """The whole register (withdrawn articles too: customers must learn they are gone), to every customer."""
        catalog = catalog or self.catalog
        sent = self._now(now)
        valid_from = valid_from or sent.date()
        articles = sorted(catalog.articles.values(), key=lambda a: a.article_number)
        # Same register, same day: same id, so a resend is de-duplicated rather than broadcast twice.
        digest = hashlib.sha256(repr((valid_from, articles)).encode()).hexdigest()
        return m.ArticleRegisterUpdate(
            header=m.Header(
                message_id=derived_id(f"register/{digest}", "sesam2/ArticleRegisterUpdate"),
                message_type="ArticleRegisterUpdate",
                sent_at=sent,
                sender_system=SENDER_SYSTEM,
            ),
            valid_from=valid_from,
            articles=articles,
        )

    def patient_address_query(
        self, customer: str, patient_id: str, *, now: datetime | None = None
    ) -> m.PatientAddressQuery:
        """SESAM2 asks the customer system that owns the patient for the current address (e.g. mail came back)."""
        sent = self._now(now)
        rng = random.Random(f"{self.seed}/address-query/{customer}/{patient_id}/{sent.date()}")
        query_id = f"AF-{sent.year}-{rng.randrange(10**6):06d}"
        return m.PatientAddressQuery(
            header=m.Header(
                message_id=derived_id(f"{customer}/{query_id}", "sesam2/PatientAddressQuery"),
                message_type="PatientAddressQuery",
                sent_at=sent,
                sender_system=SENDER_SYSTEM,
                customer_number=customer,
                correlation_id=query_id,
            ),
            query_id=query_id,
            patient_id=patient_id,
        )

    def invoice_data(
        self, customer: str, month: date, lines: Iterable[DeliveredLine], *, now: datetime | None = None
    ) -> m.InvoiceData | None:
        """The month's invoice data: lines delivered in `month` (or undated), amount = quantity times unit price.

        None when nothing was delivered that month: SESAM2 sends no empty invoice.
        """
        period = month.replace(day=1)
        invoice_lines = [
            self._invoice_line(line)
            for line in lines
            if line.delivered_on is None or line.delivered_on.replace(day=1) == period
        ]
        if not invoice_lines:
            return None
        invoice_number = f"FU-{customer}-{period:%Y%m}"
        return m.InvoiceData(
            header=m.Header(
                # One invoice per customer and month: its id says so, so a rerun of the month is a duplicate.
                message_id=derived_id(invoice_number, "sesam2/InvoiceData"),
                message_type="InvoiceData",
                sent_at=self._now(now),
                sender_system=SENDER_SYSTEM,
                customer_number=customer,
                correlation_id=invoice_number,
            ),
            invoice_number=invoice_number,
            period=period,
            total_amount=sum((line.amount for line in invoice_lines), Decimal("0.00")),
            lines=invoice_lines,
        )

    # ------------------------------------------------------------ parts

    def _invoice_line(self, line: DeliveredLine) -> m.InvoiceLine:
        article = self.catalog.articles.get(line.article_number)
        price = line.unit_price if line.unit_price is not None else article.price if article else None
        if price is None:
            raise ValueError(f"article {line.article_number} is not in the catalog: give its unit price")
        return m.InvoiceLine(
            order_id=line.order_id,
            sesam2_order_number=line.sesam2_order_number,
            article_number=line.article_number,
            article_name=article.name if article else line.article_number,
            billing_form=line.billing_form,
            quantity=line.quantity,
            unit_price=price.quantize(CENT),
            amount=(price * line.quantity).quantize(CENT),
            delivered_on=line.delivered_on,
            unit_hsa_id=line.unit_hsa_id,
        )

    def _delivered(self, order: m.CustomerOrder) -> list[m.DeviceLine]:
        """The confirmed lines as delivered, each device with the individual number it was confirmed with."""
        return [
            m.DeviceLine(
                line_number=c.line_number,
                article_number=c.article_number,
                quantity=c.quantity,
                individual_number=c.individual_number,
            )
            for c in self.order_confirmation(order).lines
        ]

    def _article_type(self, article_number: str) -> ArticleType:
        article = self.catalog.articles.get(article_number)
        return article.article_type if article else ArticleType.MAIN_AID

    def _header(self, cls: type[m.Message], inbound: m.Message, now: datetime | None) -> m.Header:
        source = inbound.header
        return m.Header(
            # Derived from what SESAM2 received: the same inbound message always gets the same answer ids.
            message_id=derived_id(source.message_id, f"sesam2/{cls.__name__}"),
            message_type=cls.__name__,
            sent_at=self._now(now),
            sender_system=SENDER_SYSTEM,
            customer_number=source.customer_number,
            correlation_id=source.correlation_id or routing.reference(inbound),
            causation_id=source.message_id,
            # SESAM2's header carries the version of the customer message it came from (broker/contract/dialect.py,
            # XmlDialect.versions): an answer to a 1.1 order says 1.1, as the customer system wrote it.
            schema_version=source.schema_version,
        )

    def _now(self, now: datetime | None) -> datetime:
        return stockholm_time(now or self._clock())

    def _rng(self, message: m.Message, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}/{purpose}/{message.header.message_id}")


_CANCEL_REASONS = (
    CancellationReason.NOT_DELIVERABLE,
    CancellationReason.ARTICLE_DISCONTINUED,
    CancellationReason.DUPLICATE_ORDER,
    CancellationReason.CUSTOMER_REQUEST,
    CancellationReason.OTHER,
)


def _reference(order: Order) -> str:
    return order.order_id if isinstance(order, m.CustomerOrder) else order.withdrawal_id


def _earlier(sent: datetime, minutes: int, inbound: m.Message) -> datetime:
    """When it happened: a while before SESAM2 reported it, but never before SESAM2 had the order."""
    return stockholm_time(max(sent - timedelta(minutes=minutes), inbound.header.sent_at))


def _lead(rng: random.Random, priority: Priority) -> int:
    """Business days from order to delivery: an urgent order goes out within two days."""
    return rng.randint(1, 2) if priority is not Priority.NORMAL else rng.randint(3, 10)


def _business_days(start: date, days: int) -> date:
    day = start
    while days > 0 or day.weekday() >= 5:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def _billing_form(rng: random.Random, article_type: ArticleType) -> BillingForm:
    # Main aids are mostly rented out; accessories sold with return; spare parts sold.
    if article_type is ArticleType.MAIN_AID:
        return BillingForm.RENTAL if rng.random() < 0.75 else BillingForm.SALE_WITH_RETURN
    if article_type is ArticleType.ACCESSORY:
        return BillingForm.SALE_WITH_RETURN if rng.random() < 0.5 else BillingForm.SALE
    return BillingForm.SALE


def _individual(rng: random.Random) -> str:
    return f"HMC{rng.randrange(10**7):07d}"
