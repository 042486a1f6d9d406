"""Realistic, valid customer-system messages of every inbound type, reproducible from a seed.

One `random.Random(seed)` drives everything, so the same seed, catalog, customers and `start` give the
same messages, byte for byte. With a `clock` (live traffic) only the times differ between runs: the rng
is consumed the same way either way.

Articles come from the catalog (active ones only, with their own ISO 9999 code and article type), so
every order passes the broker's catalog check too.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from adapters.catalog_file import DEMO_CATALOG, load_catalog
from adapters.harness import synthetic as syn
from adapters.harness import texts, version_fields
from adapters.harness.world import BufferStore, Resident, Unit, World, build
from broker.catalog import Catalog
from broker.contract import identifiers
from broker.model import messages as m
from broker.model.codes import (
    AddressKind,
    ArticleStatus,
    ArticleType,
    CancellationReason,
    FaultSubject,
    Priority,
    WorkOrderKind,
)
from broker.model.types import IdKind

STOCKHOLM = ZoneInfo("Europe/Stockholm")
SENDER_SYSTEM = "webSesam"

OrderVariant = Literal["patient", "urgent", "unit", "buffer-store"]
ORDER_VARIANTS: tuple[OrderVariant, ...] = get_args(OrderVariant)
_VARIANT_WEIGHTS = (60, 15, 10, 15)

# A week's traffic at an HMC is mostly orders; the rest in roughly these proportions.
DEFAULT_MIX: dict[str, float] = {
    "CustomerOrder": 55,
    "WorkOrder": 10,
    "PickupOrder": 8,
    "FaultReport": 6,
    "BufferWithdrawal": 5,
    "ReturnReceipt": 4,
    "OrthopaedicReferral": 4,
    "OrderStatusQuery": 4,
    "BufferStockReport": 3,
    "PatientAddressReply": 1,
    "OrderWithdrawal": 1,  # customer dialect 1.1
}
INBOUND_NAMES = tuple(cls.__name__ for cls in m.INBOUND_TYPES)


def stockholm_time(moment: datetime) -> datetime:
    """Whole seconds, Swedish local time, never in the hour that repeats when daylight saving time ends
    (SESAM2 writes local time without an offset and could not tell the two apart)."""
    # Through UTC: astimezone() to the zone a value already has returns it unchanged, even a wall time
    # that does not exist (the hour skipped in spring).
    local = moment.astimezone(UTC).astimezone(STOCKHOLM).replace(microsecond=0)
    if local.replace(fold=1 - local.fold).utcoffset() != local.utcoffset():
        # To the end of the repeated hour (wall-clock arithmetic): times stay in order.
        local = local.replace(minute=0, second=0, fold=0) + timedelta(hours=1)
    return local


class Generator:
    """Customer-system traffic for `customers`, drawn from `catalog` (default: the demo catalog)."""

    def __init__(
        self,
        seed: int,
        catalog: Catalog | None = None,
        customers: Sequence[str] = ("1001",),
        *,
        start: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
        versions: Mapping[str, str] | None = None,
    ) -> None:
        """`versions`: the customer dialect's version each customer's system writes (`SchemaVersion`), as the
        broker is configured for it; 1.0 for a customer not named."""
        if not customers:
            raise ValueError("at least one customer number is needed")
        for customer in customers:
            identifiers.check(IdKind.CUSTOMER_NUMBER, customer)
        self.seed = seed
        self.rng = random.Random(seed)
        self.catalog = catalog or load_catalog(DEMO_CATALOG)
        self.articles = sorted(
            (a for a in self.catalog.articles.values() if a.status is ArticleStatus.ACTIVE),
            key=lambda a: a.article_number,
        )
        if not self.articles:
            raise ValueError("the catalog has no active article to order")
        self.customers = tuple(customers)
        self.versions = dict(versions or {})
        self.worlds: dict[str, World] = {c: build(seed, c) for c in self.customers}
        self._time = stockholm_time(start or datetime.now(STOCKHOLM))
        self._clock = clock
        self._serial = self.rng.randint(1000, 90000)
        # Earlier messages later ones refer to: a return receipt closes a pickup, a query asks for an order.
        self._pickups: dict[str, list[m.PickupOrder]] = {c: [] for c in self.customers}
        self._orders: dict[str, list[str]] = {c: [] for c in self.customers}

    # ------------------------------------------------------------ public API

    def message(self, type_name: str, customer: str | None = None, **options: Any) -> m.Message:
        """One message of an inbound type; `options` are the keyword arguments of its builder below."""
        builder: Callable[..., m.Message] | None = getattr(self, _BUILDERS.get(type_name, ""), None)
        if builder is None:
            raise ValueError(f"no generator for {type_name!r}; inbound types: {', '.join(INBOUND_NAMES)}")
        message = builder(customer, **options)
        if self.versions.get(message.header.customer_number or "", m.SCHEMA_VERSION) != m.SCHEMA_VERSION:
            # The customer's system writes a later version than 1.0: it fills in that version's elements too.
            rng = random.Random(f"{self.seed}/version-fields/{message.header.message_id}")
            message = version_fields.enrich(message, rng)
        return message

    def mix(self, n: int, weights: Mapping[str, float] | None = None) -> Iterator[m.Message]:
        """`n` messages of a realistic mix (DEFAULT_MIX unless `weights`), customers chosen at random."""
        chosen = dict(weights if weights is not None else DEFAULT_MIX)
        unknown = sorted(set(chosen) - set(INBOUND_NAMES))
        if unknown or not chosen or any(w < 0 for w in chosen.values()) or sum(chosen.values()) <= 0:
            raise ValueError(
                f"weights must be non-negative, not all zero, for inbound types only "
                f"({', '.join(INBOUND_NAMES)}); unknown: {', '.join(unknown) or '-'}"
            )
        names, shares = list(chosen), list(chosen.values())
        for _ in range(n):
            yield self.message(self.rng.choices(names, shares)[0], self.rng.choice(self.customers))

    def now(self) -> datetime:
        """The next message's time: the clock's, or the simulated clock moved on by a few seconds."""
        self._time = stockholm_time(self._time + timedelta(seconds=self.rng.randint(1, 90)))
        return stockholm_time(self._clock()) if self._clock else self._time

    def world(self, customer: str | None) -> World:
        if customer is None:
            return self.worlds[self.rng.choice(self.customers)]
        if customer not in self.worlds:  # a customer only named later (a scenario's) gets a world too
            identifiers.check(IdKind.CUSTOMER_NUMBER, customer)
            self.worlds[customer] = build(self.seed, customer)
            self._pickups[customer], self._orders[customer] = [], []
        return self.worlds[customer]

    # ------------------------------------------------------------ builders, one per inbound type

    def customer_order(
        self,
        customer: str | None = None,
        *,
        variant: OrderVariant | None = None,
        lines: int | None = None,
        buffer_store_id: str | None = None,
        at: datetime | None = None,
        article: str | None = None,
    ) -> m.CustomerOrder:
        """A patient order (variant patient/urgent: to the home; unit: to a ward) or a buffer-store order;
        `article` puts that article on the first line."""
        w = self.world(customer)
        variant = variant or self.rng.choices(ORDER_VARIANTS, _VARIANT_WEIGHTS)[0]
        at = self._at(at)
        order_id = self._reference("WS", w.customer, at)
        prescriber, unit = self._prescriber(w), self._unit(w)
        resident = None if variant == "buffer-store" else self._resident(w)
        if variant == "buffer-store":
            store = self._store(w, buffer_store_id)
            delivery = self._address(AddressKind.BUFFER_STORE, store.unit, store_id=store.store_id)
            chosen = self._articles(lines or self.rng.randint(2, 5), main_aid_first=False)
        elif variant == "unit":
            delivery = self._address(AddressKind.UNIT, unit)
            chosen = self._articles(lines or self.rng.randint(1, 2))
        else:
            assert resident is not None
            delivery = self._home(resident)
            chosen = self._articles(lines or self.rng.choices((1, 2, 3, 4), (40, 30, 20, 10))[0])
        if article is not None:
            first = next((a for a in self.articles if a.article_number == article), None)
            if first is None:
                raise ValueError(f"article {article} is not an active article of the catalog")
            chosen = [first, *(a for a in chosen if a is not first)][: len(chosen)]
        priority = Priority.URGENT if variant == "urgent" else Priority.NORMAL
        lead = self.rng.randint(1, 3) if priority is Priority.URGENT else self.rng.randint(5, 21)
        self._orders[w.customer].append(order_id)
        return m.CustomerOrder(
            header=self._header(m.CustomerOrder, w, order_id, at, unit),
            order_id=order_id,
            priority=priority,
            prescriber=prescriber,
            orderer=self._staff(w) if self.rng.random() < 0.3 else None,
            patient=resident.patient if resident else None,
            delivery=delivery,
            requested_delivery_date=at.date() + timedelta(days=lead) if self.rng.random() < 0.6 else None,
            note=self.rng.choice(texts.ORDER_NOTES) if self.rng.random() < 0.25 else None,
            lines=[
                m.OrderLine(
                    line_number=i,
                    article_number=a.article_number,
                    quantity=self._quantity(a, buffer=variant == "buffer-store"),
                    article_type=a.article_type,
                    iso9999=a.iso9999,
                    comment=self.rng.choice(texts.LINE_COMMENTS) if self.rng.random() < 0.15 else None,
                )
                for i, a in enumerate(chosen, start=1)
            ],
        )

    def buffer_withdrawal(
        self,
        customer: str | None = None,
        *,
        lines: int | None = None,
        buffer_store_id: str | None = None,
        at: datetime | None = None,
    ) -> m.BufferWithdrawal:
        w = self.world(customer)
        at = self._at(at)
        store, withdrawal_id = self._store(w, buffer_store_id), self._reference("BU", w.customer, at)
        chosen = self._articles(lines or self.rng.choices((1, 2), (80, 20))[0])
        return m.BufferWithdrawal(
            header=self._header(m.BufferWithdrawal, w, withdrawal_id, at, store.unit),
            withdrawal_id=withdrawal_id,
            buffer_store_id=store.store_id,
            withdrawn_at=at - timedelta(minutes=self.rng.randint(5, 240)),
            prescriber=self._prescriber(w),
            patient=self._resident(w).patient,
            lines=self._devices(chosen),
        )

    def buffer_stock_report(
        self,
        customer: str | None = None,
        *,
        items: int | None = None,
        buffer_store_id: str | None = None,
        at: datetime | None = None,
    ) -> m.BufferStockReport:
        w = self.world(customer)
        at = self._at(at)
        store = self._store(w, buffer_store_id)
        count = min(items or self.rng.randint(4, 10), len(self.articles))
        return m.BufferStockReport(
            # Not about one order: correlated by the store, so a store's reports keep their order.
            header=self._header(m.BufferStockReport, w, store.store_id, at, store.unit),
            buffer_store_id=store.store_id,
            counted_at=at - timedelta(hours=self.rng.randint(1, 12)),
            items=[
                m.StockItem(article_number=a.article_number, quantity_on_hand=self.rng.choice((0, 1, 1, 2, 3, 5, 8)))
                for a in sorted(self.rng.sample(self.articles, count), key=lambda a: a.article_number)
            ],
        )

    def work_order(
        self,
        customer: str | None = None,
        *,
        kind: WorkOrderKind | None = None,
        priority: Priority | None = None,
        at: datetime | None = None,
    ) -> m.WorkOrder:
        w = self.world(customer)
        kind = kind or self.rng.choice(list(WorkOrderKind))
        at = self._at(at)
        work_order_id = self._reference("AO", w.customer, at)
        article = self._articles(1)[0]
        resident = self._resident(w) if kind is not WorkOrderKind.CONSULTATION or self.rng.random() < 0.5 else None
        at_home = resident is not None and kind in (WorkOrderKind.INSTALLATION, WorkOrderKind.ASSEMBLY)
        if priority is None:
            urgent = kind is WorkOrderKind.CORRECTIVE_MAINTENANCE and self.rng.random() < 0.3
            priority = Priority.URGENT if urgent else Priority.NORMAL
        return m.WorkOrder(
            header=self._header(m.WorkOrder, w, work_order_id, at, self._unit(w)),
            work_order_id=work_order_id,
            kind=kind,
            priority=priority,
            prescriber=self._prescriber(w),
            article_number=article.article_number,
            individual_number=self._individual() if article.article_type is ArticleType.MAIN_AID else None,
            description=self.rng.choice(texts.WORK_ORDER_DESCRIPTIONS[kind]),
            patient=resident.patient if resident else None,
            address=self._home(resident) if at_home and resident else None,
            requested_date=at.date() + timedelta(days=self.rng.randint(2, 14)) if self.rng.random() < 0.5 else None,
        )

    def pickup_order(
        self, customer: str | None = None, *, devices: int | None = None, at: datetime | None = None
    ) -> m.PickupOrder:
        w = self.world(customer)
        at = self._at(at)
        pickup_id, resident = self._reference("HO", w.customer, at), self._resident(w)
        pickup = m.PickupOrder(
            header=self._header(m.PickupOrder, w, pickup_id, at, self._unit(w)),
            pickup_id=pickup_id,
            orderer=self._staff(w),
            patient=resident.patient,
            address=self._home(resident),
            devices=self._devices(self._articles(devices or self.rng.choices((1, 2, 3), (60, 30, 10))[0])),
            requested_date=at.date() + timedelta(days=self.rng.randint(2, 10)) if self.rng.random() < 0.5 else None,
            note="Hjälpmedlen står i hallen." if self.rng.random() < 0.2 else None,
        )
        self._pickups[w.customer].append(pickup)
        return pickup

    def return_receipt(
        self, customer: str | None = None, *, pickup: m.PickupOrder | None = None, at: datetime | None = None
    ) -> m.ReturnReceipt:
        """The receipt of `pickup`, else of an earlier pickup of this run, else of one made up on the spot."""
        w = self.world(customer or (pickup.header.customer_number if pickup else None))
        if pickup is None:
            earlier = self._pickups[w.customer]
            pickup = earlier.pop(0) if earlier else self.pickup_order(w.customer, at=at)
        at = self._at(at)
        receipt_id = self._reference("AK", w.customer, at)
        return m.ReturnReceipt(
            # About the pickup: same correlation, so the order view closes it.
            header=self._header(m.ReturnReceipt, w, pickup.pickup_id, at, self._unit(w)),
            receipt_id=receipt_id,
            pickup_id=pickup.pickup_id,
            returned_at=at - timedelta(minutes=self.rng.randint(5, 120)),
            patient=pickup.patient,
            received_by=syn.full_name(self.rng),
            devices=list(pickup.devices),
        )

    def fault_report(
        self,
        customer: str | None = None,
        *,
        answer_requested: bool | None = None,
        subject: FaultSubject | None = None,
        at: datetime | None = None,
    ) -> m.FaultReport:
        w = self.world(customer)
        at = self._at(at)
        report_id = self._reference("FR", w.customer, at)
        subject = subject or (FaultSubject.PRODUCT if self.rng.random() < 0.75 else FaultSubject.SERVICE)
        article = self._articles(1)[0] if subject is FaultSubject.PRODUCT else None
        return m.FaultReport(
            header=self._header(m.FaultReport, w, report_id, at, self._unit(w)),
            report_id=report_id,
            subject=subject,
            reporter=self._staff(w),
            answer_requested=self.rng.random() < 0.6 if answer_requested is None else answer_requested,
            description=self.rng.choice(texts.FAULT_DESCRIPTIONS[subject]),
            article_number=article.article_number if article else None,
            individual_number=self._individual() if article and article.article_type is ArticleType.MAIN_AID else None,
            patient=self._resident(w).patient if self.rng.random() < 0.5 else None,
        )

    def orthopaedic_referral(
        self, customer: str | None = None, *, acute: bool | None = None, at: datetime | None = None
    ) -> m.OrthopaedicReferral:
        w = self.world(customer)
        at = self._at(at)
        referral_id = self._reference("OT", w.customer, at)
        acute = self.rng.random() < 0.15 if acute is None else acute
        return m.OrthopaedicReferral(
            header=self._header(m.OrthopaedicReferral, w, referral_id, at, self._unit(w)),
            referral_id=referral_id,
            acute=acute,
            prescriber=self._prescriber(w),
            patient=self._resident(w).patient,
            requested_service=self.rng.choice(texts.REFERRAL_SERVICES),
            clinical_information=self.rng.choice(texts.CLINICAL_INFORMATION),
            requested_date=at.date() + timedelta(days=1 if acute else self.rng.randint(7, 30)),
        )

    def order_status_query(
        self, customer: str | None = None, *, order_id: str | None = None, at: datetime | None = None
    ) -> m.OrderStatusQuery:
        """About `order_id`, else an order of this run, else one the broker has never seen (answered unknown)."""
        w = self.world(customer)
        at = self._at(at)
        earlier = self._orders[w.customer]
        order_id = order_id or (self.rng.choice(earlier) if earlier else self._reference("WS", w.customer, at))
        return m.OrderStatusQuery(
            header=self._header(m.OrderStatusQuery, w, order_id, at, self._unit(w)), order_id=order_id
        )

    def order_withdrawal(
        self,
        customer: str | None = None,
        *,
        order_id: str | None = None,
        reason: CancellationReason = CancellationReason.CUSTOMER_REQUEST,
        at: datetime | None = None,
    ) -> m.OrderWithdrawal:
        """Withdraw `order_id`, else an order of this run, else a made-up one (a customer dialect 1.1 type)."""
        w = self.world(customer)
        at = self._at(at)
        earlier = self._orders[w.customer]
        order_id = order_id or (self.rng.choice(earlier) if earlier else self._reference("WS", w.customer, at))
        header = self._header(m.OrderWithdrawal, w, order_id, at, self._unit(w))
        return m.OrderWithdrawal(
            header=dataclasses.replace(header, schema_version="1.1"),
            order_id=order_id,
            reason=reason,
            note=self.rng.choice(texts.WITHDRAWAL_NOTES) if self.rng.random() < 0.5 else None,
        )

    def patient_address_reply(
        self,
        customer: str | None = None,
        *,
        query: m.PatientAddressQuery | None = None,
        at: datetime | None = None,
    ) -> m.PatientAddressReply:
        """The answer to `query` (else to a made-up one): the patient's current home address."""
        w = self.world(customer or (query.header.customer_number if query else None))
        at = self._at(at)
        resident = (w.resident(query.patient_id) if query else None) or self._resident(w)
        if query is not None and resident.patient.patient_id != query.patient_id:  # not one of ours: name made up
            patient = m.Patient(patient_id=query.patient_id, name=syn.full_name(self.rng))
            resident = Resident(patient, syn.postal_address(self.rng), syn.phone(self.rng))
        query_id = query.query_id if query else f"AF-{at.year}-{self.rng.randrange(10**6):06d}"
        moved = syn.postal_address(self.rng, flat=self.rng.random() < 0.5)  # why SESAM2 asked: the patient moved
        return m.PatientAddressReply(
            header=self._header(m.PatientAddressReply, w, query_id, at, self._unit(w)),
            query_id=query_id,
            patient=resident.patient,
            address=self._home(Resident(resident.patient, moved, resident.phone)),
            valid_from=at.date() - timedelta(days=self.rng.randint(0, 60)) if self.rng.random() < 0.7 else None,
        )

    # ------------------------------------------------------------ parts

    def _at(self, at: datetime | None) -> datetime:
        return self.now() if at is None else stockholm_time(at)

    def _header(self, cls: type[m.Message], w: World, correlation_id: str, at: datetime, unit: Unit) -> m.Header:
        return m.Header(
            message_id=str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            message_type=cls.__name__,
            sent_at=stockholm_time(at),
            sender_system=SENDER_SYSTEM,
            customer_number=w.customer,
            unit_hsa_id=unit.hsa_id,
            correlation_id=correlation_id,
            schema_version=self.versions.get(w.customer, m.SCHEMA_VERSION),
        )

    def _reference(self, kind: str, customer: str, at: datetime) -> str:
        # Increasing, with gaps: other users of the same customer system take the numbers in between.
        self._serial += self.rng.randint(1, 9)
        return f"{kind}-{customer}-{at.year}-{self._serial:06d}"

    def _staff(self, w: World) -> m.Person:
        return self.rng.choice(w.staff)

    def _prescriber(self, w: World) -> m.Prescriber:
        staff = self._staff(w)
        return m.Prescriber(hsa_id=staff.hsa_id, name=staff.name, phone=staff.phone)

    def _unit(self, w: World) -> Unit:
        return self.rng.choice(w.units)

    def _resident(self, w: World) -> Resident:
        return self.rng.choice(w.residents)

    def _store(self, w: World, store_id: str | None) -> BufferStore:
        if store_id is None:
            return self.rng.choice(w.stores)
        known = next((s for s in w.stores if s.store_id == store_id), None)
        return known or BufferStore(store_id=store_id, unit=w.stores[0].unit)  # a store named by a scenario

    def _address(self, kind: AddressKind, unit: Unit, *, store_id: str | None = None) -> m.Address:
        return m.Address(
            kind=kind,
            name=f"Buffertförråd {unit.name}"[:100] if store_id else unit.name,
            street=unit.address.street,
            postal_code=unit.address.postal_code,
            city=unit.address.city,
            buffer_store_id=store_id,
            phone=unit.phone,
        )

    def _home(self, resident: Resident) -> m.Address:
        return m.Address(
            kind=AddressKind.PATIENT_RESIDENCE,
            name=resident.patient.name,
            street=resident.home.street,
            postal_code=resident.home.postal_code,
            city=resident.home.city,
            phone=resident.phone,
            instructions=self.rng.choice(texts.DELIVERY_INSTRUCTIONS) if self.rng.random() < 0.3 else None,
        )

    def _articles(self, n: int, *, main_aid_first: bool = True) -> list[m.Article]:
        """`n` different articles; a patient order starts with a main aid and adds what belongs to it."""
        n = max(1, min(n, len(self.articles)))
        mains = [a for a in self.articles if a.article_type is ArticleType.MAIN_AID]
        if not (main_aid_first and mains):
            return self.rng.sample(self.articles, n)
        first = self.rng.choice(mains)
        group = first.iso9999[:5]  # same ISO 9999 class and subclass: accessories and parts of the same aid
        related = [a for a in self.articles if a is not first and a.iso9999.startswith(group)]
        others = [a for a in self.articles if a is not first and a not in related]
        self.rng.shuffle(related)
        self.rng.shuffle(others)
        return [first, *related, *others][:n]

    def _quantity(self, article: m.Article, *, buffer: bool) -> int:
        if buffer:  # a store stocks several of each
            return self.rng.randint(2, 6)
        return 1 if article.article_type is ArticleType.MAIN_AID else self.rng.choice((1, 1, 2))

    def _devices(self, articles: Sequence[m.Article]) -> list[m.DeviceLine]:
        return [
            m.DeviceLine(
                line_number=i,
                article_number=a.article_number,
                quantity=1 if a.article_type is ArticleType.MAIN_AID else self.rng.choice((1, 2)),
                individual_number=self._individual() if a.article_type is ArticleType.MAIN_AID else None,
            )
            for i, a in enumerate(articles, start=1)
        ]

    def _individual(self) -> str:
        """A device's individual number as HMC marks it (a label on the frame)."""
        return f"HMC{self.rng.randrange(10**7):07d}"


_BUILDERS = {
    "CustomerOrder": "customer_order",
    "BufferWithdrawal": "buffer_withdrawal",
    "BufferStockReport": "buffer_stock_report",
    "WorkOrder": "work_order",
    "PickupOrder": "pickup_order",
    "ReturnReceipt": "return_receipt",
    "FaultReport": "fault_report",
    "OrthopaedicReferral": "orthopaedic_referral",
    "OrderStatusQuery": "order_status_query",
    "PatientAddressReply": "patient_address_reply",
    "OrderWithdrawal": "order_withdrawal",
}
assert set(_BUILDERS) == set(INBOUND_NAMES), "a generator for every inbound type"
