"""The pipeline: every delivery passes the same named stages, in one direction, in one unit of work.

    read (parse, XSD, identifiers) -> de-duplicate -> store -> authorise -> handle by type
    (translate, correlate to the order view, route) -> outbox

Nothing here touches AMQP: what must go out is written to the outbox in the same transaction as the
state change, and the runtime publishes it after the commit. Permanent faults become a stored
rejection (and a Rejection to the sender); they never stop the other messages of the batch.

An operator's replay (Delivery.replay) takes the same stages, de-duplication aside: it is stored as a
new row linked to its original (replay_of), validated, translated and routed again. What it would send
is compared with what the original and its earlier replays sent: an outgoing message that went out (or
is on its way) is not sent again unless the replay is forced. Outgoing ids derive from the incoming id,
so a forced replay resends under the same ids (consumers that kept the first copy drop it); an edited
payload is a new version, and what it sends gets ids derived from its own row.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from broker import buffer_stores, invoices, order_view, prescribers
from broker.catalog import Catalog
from broker.config import Settings
from broker.contract import identifiers
from broker.contract.dialect import DIALECTS, Parsed, ReadPolicy, XmlDialect, read
from broker.contract.spec import Dialect
from broker.envelope import Delivery, Exchange, Outgoing, Side
from broker.model import messages as m
from broker.model.codes import Direction, OrderStatus
from broker.model.types import IdKind
from broker.store.tables import MessageRow
from broker.store.unit_of_work import UnitOfWork
from broker.translation import BROKER_SYSTEM, derived_id, forward

CUSTOMER = DIALECTS[Dialect.CUSTOMER]
SESAM2 = DIALECTS[Dialect.SESAM2]
_EXPECTED = {Side.CUSTOMER: CUSTOMER, Side.SESAM2: SESAM2}
_DIRECTION = {Side.CUSTOMER: Direction.INBOUND, Side.SESAM2: Direction.OUTBOUND}
log = logging.getLogger(__name__)
_ID_NAMESPACE = uuid.UUID("0f5f8a4e-2d52-4b8e-a7c1-3d9b6a1e4c27")


@dataclass
class Item:
    """One delivery on its way through the stages."""

    delivery: Delivery
    parsed: Parsed
    message_id: str
    started: float
    emitted: int = 0  # outgoing messages written to the outbox
    held_back: list[str] = field(default_factory=list)  # a replay's outgoing messages that had gone out already
    family: list[int] | None = None  # a replay's original and its replays (row ids), once looked up
    people: list[prescribers.Sighting] = field(default_factory=list)  # for the register, written per batch


class Pipeline:
    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.policy = ReadPolicy(limits=settings.xml_limits, reserve_patterns=settings.reserve_patterns)
        self.catalog = catalog

    # ---------------------------------------------------------------- batch

    def handle(self, batch: Sequence[Delivery], uow: UnitOfWork) -> None:
        items = [self._read(d) for d in batch]
        buffer_stores.lock(self.settings, (i.parsed.message for i in items), uow)  # in key order: no deadlocks
        uow.load_orders(k for i in items if (k := _order_key(i.parsed.message)) is not None)
        for side in Side:
            mine = [i for i in items if i.delivery.side is side]
            originals = uow.originals(_DIRECTION[side], (i.message_id for i in mine))
            for item in mine:
                if item.delivery.replay is not None:
                    self._process(item, uow)  # a replay is a new attempt, never a duplicate of its original
                    continue
                original = originals.get(item.message_id)
                if original is not None:
                    # A redelivery or a resend: processed once already; record it, send nothing again.
                    uow.event(original, "dedupe", "duplicate", "the same message id arrived again")
                    continue
                originals[item.message_id] = self._process(item, uow)
        prescribers.record(uow, (p for i in items for p in i.people))  # one statement for the batch

    def _read(self, delivery: Delivery) -> Item:
        started = time.perf_counter()
        parsed = read(delivery.body, self.policy)
        message_id = delivery.message_id or parsed.claimed_message_id or _body_id(delivery.body)
        return Item(delivery, parsed, message_id[:64], started)

    # ---------------------------------------------------------------- one message

    def _process(self, item: Item, uow: UnitOfWork) -> MessageRow:
        if item.delivery.replay is not None:
            # Two operators replaying one message at once: the second waits here, then sees what the
            # first sent, so it does not send it again.
            uow.lock(item.delivery.replay.of)
        row = self._store(item, uow)
        if item.delivery.replay is not None:
            uow.flush()  # a replay's outgoing ids derive from its own row id
        self._stages(row, item, uow)
        if item.delivery.replay is not None:
            self._settle_replay(row, item, uow)
        return row

    def _store(self, item: Item, uow: UnitOfWork) -> MessageRow:
        d, parsed = item.delivery, item.parsed
        message = parsed.message
        header = message.header if message else None
        patient = patient_id_of(message)
        return uow.add_message(
            message_id=item.message_id,
            direction=_DIRECTION[d.side].value,
            message_type=type(message).__name__ if message else parsed.root_name,
            customer_number=(header.customer_number if header else None) or self._claimed_customer(d, parsed),
            correlation_id=(header.correlation_id if header else None) or d.correlation_id,
            order_ref=order_view.reference(message) if message else None,
            patient_ref=uow.patient_ref(patient, self.settings.reserve_patterns) if patient else None,
            status="received",
            **_kept_payload(d.body, self.settings.max_message_bytes, _properties(d)),
            replay_of=d.replay.of if d.replay else None,
        )

    def _stages(self, row: MessageRow, item: Item, uow: UnitOfWork) -> None:
        d, parsed = item.delivery, item.parsed
        message = parsed.message
        read_ms = (time.perf_counter() - item.started) * 1000
        problems = list(parsed.problems) + self._check(d, parsed, item.message_id)
        if problems or message is None:
            for p in problems:
                if p.rule.startswith("security."):  # someone sends for a customer it does not own
                    log.warning(
                        "security event: %s",
                        p.message,
                        extra={
                            "rule": p.rule,
                            "user_id": d.user_id,
                            "routing_key": d.routing_key[:64],
                            "sender": self._sender(d),
                            "message_id": item.message_id,
                        },
                    )
            uow.event(row, "validate", "rejected", _summary(problems), read_ms)
            self._reject(row, item, problems, uow)
            return
        uow.event(row, "validate", "ok", None, read_ms)
        if d.side is Side.CUSTOMER:
            self._from_customer(row, item, message, uow)
        else:
            self._from_sesam2(row, item, message, uow)
        self._keep(row, item, message, uow)

    def _keep(self, row: MessageRow, item: Item, message: m.Message, uow: UnitOfWork) -> None:
        """What the broker keeps beyond routing: buffer stock (and the replenishments it opens), invoice
        data, and who ordered (the prescriber register)."""
        for order in buffer_stores.apply(self.settings, message, row, uow):
            self._emit(row, item, uow, SESAM2, order, Exchange.SESAM2_OUT, "CustomerOrder")
        invoices.keep(message, row, uow)
        item.people = prescribers.seen(message)

    def _sender(self, d: Delivery) -> str | None:
        """The customer system that really sent a delivery, from what RabbitMQ vouches for, never the document:
        the customer numbers its AMQP user owns (user_id is checked by RabbitMQ), else the routing key's
        (RabbitMQ's topic permissions hold each user to its own numbers). None when it cannot be told."""
        routed = d.routing_key.split(".", 1)[0] if d.routing_key else ""
        routed_customer = self.settings.customer(routed)
        if d.user_id is not None:
            owned = [c.number for c in self.settings.customers if c.amqp_user == d.user_id]
            if owned:
                return routed if routed in owned else owned[0]
            if routed_customer is not None and routed_customer.amqp_user is not None:
                return None  # a user that owns no customer number, on another system's routing key
        return routed if routed_customer is not None else None

    def _claimed_customer(self, d: Delivery, parsed: Parsed) -> str | None:
        if parsed.claimed_customer:
            return parsed.claimed_customer
        return d.routing_key.split(".", 1)[0] if d.side is Side.CUSTOMER and d.routing_key else None

    def _check(self, d: Delivery, parsed: Parsed, message_id: str) -> list[m.Problem]:
        """Rules beyond the document itself: right side, right sender, consistent envelope."""
        problems: list[m.Problem] = []
        if parsed.dialect is not None and parsed.dialect is not _EXPECTED[d.side]:
            problems.append(
                _problem("message.wrong-side", f"a {parsed.dialect.name} message arrived from the {d.side} side")
            )
        message = parsed.message
        if message is None:
            return problems
        header = message.header
        if d.message_id and d.message_id != header.message_id:
            problems.append(_problem("envelope.message-id", "AMQP message_id differs from the header's MessageId"))
        expected_direction = Direction.INBOUND if d.side is Side.CUSTOMER else Direction.OUTBOUND
        if type(message).direction is not expected_direction:
            problems.append(_problem("message.wrong-direction", f"{type(message).__name__} is not sent by {d.side}"))
        if d.side is Side.CUSTOMER:
            problems += self._authorise(d, header)
            if self.catalog is not None and parsed.dialect is not None:
                for breach in self.catalog.check(message):
                    path = parsed.dialect.binding.element_path(type(message), breach.field)
                    problems.append(m.Problem(rule=breach.rule, message=breach.message, path=path))
        return problems

    def _authorise(self, d: Delivery, header: m.Header) -> list[m.Problem]:
        """A customer system may send only for the customer numbers it owns."""
        number = header.customer_number
        customer = self.settings.customer(number)
        if customer is None:
            return [_problem("customer.unknown", f"customer number {number} is not configured")]
        routed = d.routing_key.split(".", 1)[0] if d.routing_key else number
        if routed != number:
            return [_problem("security.customer-mismatch", f"routing key is for {routed}, header for {number}")]
        if d.user_id is not None and customer.amqp_user is not None and d.user_id != customer.amqp_user:
            return [_problem("security.forged-customer", f"AMQP user {d.user_id} does not own customer {number}")]
        return []

    # ---------------------------------------------------------------- customer -> SESAM2

    def _from_customer(self, row: MessageRow, item: Item, message: m.Message, uow: UnitOfWork) -> None:
        d = item.delivery
        customer = message.header.customer_number or ""
        if isinstance(message, m.OrderStatusQuery):
            reply = self._status_reply(message, uow)
            target = (
                (Exchange.DIRECT, d.reply_to) if d.reply_to else (Exchange.CUSTOMER_OUT, f"{customer}.OrderStatusReply")
            )
            self._emit(row, item, uow, CUSTOMER, reply, *target)
            uow.set_status(row, "answered")
            uow.event(row, "answer", "ok", f"order status {reply.status}")
            return
        ref = order_view.reference(message)
        if isinstance(message, order_view.OPENS) and ref and uow.order(customer, ref) is None:
            uow.add_order(
                customer_number=customer,
                order_id=ref,
                kind=type(message).__name__,
                status=OrderStatus.SENT.value,
                lines=order_view.opening_lines(message),
            )
        translated = forward(message)
        self._emit(row, item, uow, SESAM2, translated, Exchange.SESAM2_OUT, type(message).__name__)
        uow.set_status(row, "forwarded")
        uow.event(row, "translate", "ok", f"to SESAM2 {SESAM2.binding.by_type[type(message)].names[0]}")

    def _status_reply(self, query: m.OrderStatusQuery, uow: UnitOfWork) -> m.OrderStatusReply:
        order = uow.order(query.header.customer_number or "", query.order_id)
        header = replace(
            forward(query, purpose="status-reply").header,
            message_type="OrderStatusReply",
            correlation_id=query.order_id,
        )
        if order is None:
            return m.OrderStatusReply(
                header=header, order_id=query.order_id, status=OrderStatus.UNKNOWN, updated_at=header.sent_at
            )
        lines = [
            m.StatusLine(
                line_number=int(number),
                article_number=line["article"],
                quantity=line["quantity"],
                status=OrderStatus(line.get("status", OrderStatus.SENT.value)),
                delivery_date=datetime.fromisoformat(line["delivery_date"]).date()
                if line.get("delivery_date")
                else None,
            )
            for number, line in sorted(order.lines.items(), key=lambda kv: int(kv[0]))
            if line.get("article") and line.get("quantity")
        ]
        return m.OrderStatusReply(
            header=header,
            order_id=query.order_id,
            status=OrderStatus(order.status),
            updated_at=order.updated_at.replace(microsecond=0).astimezone(UTC),
            lines=lines,
            sesam2_order_number=order.sesam2_order_number,
        )

    # ---------------------------------------------------------------- SESAM2 -> customer

    def _from_sesam2(self, row: MessageRow, item: Item, message: m.Message, uow: UnitOfWork) -> None:
        customer = message.header.customer_number
        self._correlate(row, message, uow)
        name = type(message).__name__
        if isinstance(message, m.ArticleRegisterUpdate):
            for each in self.settings.customers:
                copy = replace(message, header=replace(message.header, customer_number=each.number))
                broadcast = forward(copy, purpose=f"broadcast/{each.number}")
                self._emit(row, item, uow, CUSTOMER, broadcast, Exchange.CUSTOMER_OUT, f"{each.number}.{name}")
            uow.set_status(row, "forwarded")
            uow.event(row, "route", "ok", f"broadcast to {len(self.settings.customers)} customer systems")
            return
        configured = self.settings.customer(customer)
        if configured is None:
            self._park(row, uow, "route", f"customer number {customer} is not configured; nobody to deliver to")
            return
        if isinstance(message, m.InvoiceData):
            if not configured.invoice:
                self._park(row, uow, "route", f"customer {customer} has no invoice permission")
                return
            self._emit(row, item, uow, CUSTOMER, forward(message), Exchange.INVOICE, configured.number)
        else:
            self._emit(row, item, uow, CUSTOMER, forward(message), Exchange.CUSTOMER_OUT, f"{customer}.{name}")
        uow.set_status(row, "forwarded")
        uow.event(row, "route", "ok", f"to customer {customer}")

    def _correlate(self, row: MessageRow, message: m.Message, uow: UnitOfWork) -> None:
        """Apply an answer to its order; an answer for an unknown order is kept and reported, not dropped."""
        status = order_view.status_after(message)
        ref = order_view.reference(message)
        customer = message.header.customer_number
        if status is None or ref is None or customer is None:
            return
        order = uow.order(customer, ref)
        if order is None:
            uow.event(row, "correlate", "unknown-order", f"no order {ref} of customer {customer} in the order view")
            return
        lines = order_view.apply(order.lines, message)
        order.status = order_view.status_of(order.status, lines, message)
        order.lines = lines
        order.sesam2_order_number = getattr(message, "sesam2_order_number", None) or order.sesam2_order_number
        order.updated_at = datetime.now(UTC)
        uow.event(row, "correlate", "ok", f"order {ref} is now {order.status}")

    # ---------------------------------------------------------------- faults

    def _reject(self, row: MessageRow, item: Item, problems: list[m.Problem], uow: UnitOfWork) -> None:
        uow.set_status(row, "rejected", _summary(problems))
        d = item.delivery
        if d.side is not Side.CUSTOMER:
            return  # SESAM2 gets no Rejection message: it is kept and reported for operators
        # To the real sender, never to the customer the document names: a forged or mismatched message must
        # not land in its victim's queue. A security rejection ignores reply_to (as untrusted as the header).
        customer = self._sender(d)
        security = any(p.rule.startswith("security.") for p in problems)
        if d.reply_to and not security:
            target = (Exchange.DIRECT, d.reply_to)
        elif customer:
            target = (Exchange.CUSTOMER_OUT, f"{customer}.Rejection")
        else:
            uow.event(row, "reject", "unroutable", "sender unknown (and no usable reply_to): kept for inspection only")
            return
        rejection = m.Rejection(
            header=m.Header(
                message_id=derived_id(item.message_id, "rejection"),
                message_type="Rejection",
                sent_at=datetime.now(UTC).replace(microsecond=0),
                sender_system=BROKER_SYSTEM,
                customer_number=customer,
                correlation_id=_safe_reference(row.correlation_id),
                causation_id=item.message_id if _is_uuid(item.message_id) else None,
            ),
            received_at=row.received_at.replace(microsecond=0),
            problems=[_fit(p) for p in problems[:999]],
            rejected_message_id=item.message_id if _is_uuid(item.message_id) else None,
            rejected_type=(row.message_type or "")[:35] or None,
        )
        self._emit(row, item, uow, CUSTOMER, rejection, *target)
        uow.event(row, "reject", "ok", f"Rejection with {len(problems)} problem(s)")

    def _park(self, row: MessageRow, uow: UnitOfWork, stage: str, reason: str) -> None:
        uow.set_status(row, "parked", reason)
        uow.event(row, stage, "parked", reason)

    # ---------------------------------------------------------------- the outbox, and replays

    def _emit(
        self,
        row: MessageRow,
        item: Item,
        uow: UnitOfWork,
        dialect: XmlDialect,
        message: m.Message,
        exchange: Exchange,
        routing_key: str,
    ) -> None:
        """Write one outgoing message to the outbox; a replay first asks whether it went out already."""
        replay = item.delivery.replay
        if replay is not None:
            base = message.header.message_id
            if item.family is None:
                item.family = [r.id for r in uow.family(replay.of)]
            # The same outgoing message under the ids the original and earlier edits gave it.
            state = uow.outgoing_state([base, *(_edited_id(base, pk) for pk in item.family)])
            if state in ("sent", "pending") and not replay.force:
                item.held_back.append(f"{type(message).__name__} {base} ({state})")
                return
            if replay.diff is not None:
                # An edited payload is a new version: a consumer that kept an earlier one must not drop it.
                header = replace(message.header, message_id=_edited_id(base, row.id))
                message = replace(message, header=header)
        uow.add_outgoing(row, _outgoing(dialect, message, exchange, routing_key))
        item.emitted += 1

    def _settle_replay(self, row: MessageRow, item: Item, uow: UnitOfWork) -> None:
        replay = item.delivery.replay
        assert replay is not None
        original = uow.session.get(MessageRow, replay.of)  # locked and loaded by _process
        if original is not None:
            original.attempts += 1
        if item.held_back and not item.emitted and row.status in ("forwarded", "answered"):
            uow.set_status(row, "skipped")  # not an error: everything it would send went out before
        note = {
            "of": replay.of,
            "source": replay.source,
            "operator": replay.operator,
            "reason": replay.reason,
            "force": replay.force,
            "ticket": replay.ticket,
            "job": replay.job,
            "diff": replay.diff,
            "held_back": item.held_back,
        }
        row.properties = {**row.properties, "replay": note}
        if item.held_back:
            detail = "not sent again (use --force to): " + "; ".join(item.held_back)
            uow.event(row, "replay", "held-back", detail)
        edited = " (edited)" if replay.diff is not None else ""
        forced = " (forced)" if replay.force else ""
        uow.event(row, "replay", "ok", f"replay{edited}{forced} of #{replay.of} by {replay.operator}: {replay.reason}")
        if row.status in ("forwarded", "answered", "skipped"):
            uow.resolve(replay.of, row)


def _order_key(message: m.Message | None) -> tuple[str, str] | None:
    """The order-view key a message reads or opens: (customer number, the customer's order reference)."""
    if message is None or not message.header.customer_number:
        return None
    ref = message.order_id if isinstance(message, m.OrderStatusQuery) else order_view.reference(message)
    return (message.header.customer_number, ref) if ref else None


def _outgoing(dialect: XmlDialect, message: m.Message, exchange: Exchange, routing_key: str) -> Outgoing:
    header = message.header
    return Outgoing(
        exchange=exchange,
        routing_key=routing_key,
        body=dialect.render(message),
        message_id=header.message_id,
        message_type=type(message).__name__,
        correlation_id=header.correlation_id or order_view.reference(message),
        schema_version=header.schema_version,
        timestamp=int(header.sent_at.timestamp()),
    )


def _problem(rule: str, message: str) -> m.Problem:
    return m.Problem(rule=rule, message=message)


def _fit(p: m.Problem) -> m.Problem:
    """Keep a problem within the Rejection schema's bounds."""
    return m.Problem(
        rule=p.rule[:35],
        message=(p.message or p.rule)[:4000],
        path=p.path[:200] if p.path else None,
        line=p.line if p.line and p.line > 0 else None,
        value=p.value[:200] if p.value else None,
    )


def _summary(problems: list[m.Problem]) -> str:
    return "; ".join(f"{p.rule} at {p.path or '/'}: {p.message}" for p in problems)[:4000]


KEPT_OVERSIZED_BYTES = 64 * 1024  # what is stored of a payload over the size limit: enough to see what it was


def _kept_payload(body: bytes, limit: int, properties: dict[str, object]) -> dict[str, object]:
    """A payload within the size limit is stored whole; a larger one (refused as xml.too-large) only as its
    first KEPT_OVERSIZED_BYTES, with its size and SHA-256 in the properties: a hostile 100 MB body must not
    become a 100 MB row."""
    if len(body) <= limit:
        return {"payload": body, "properties": properties}
    kept = {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest(), "kept_bytes": KEPT_OVERSIZED_BYTES}
    return {"payload": body[:KEPT_OVERSIZED_BYTES], "properties": {**properties, "payload_truncated": kept}}


def _properties(d: Delivery) -> dict[str, object]:
    return {
        "routing_key": d.routing_key,
        "message_id": d.message_id,
        "correlation_id": d.correlation_id,
        "type": d.message_type,
        "user_id": d.user_id,
        "reply_to": d.reply_to,
        "headers": d.headers,
    }


def patient_id_of(message: m.Message | None) -> str | None:
    """The patient a message is about, if any (it is stored only as a keyed hash: patient_ref)."""
    patient = getattr(message, "patient", None)
    value = patient.patient_id if patient is not None else getattr(message, "patient_id", None)
    return str(value) if value else None


def _edited_id(base: str, row_id: int) -> str:
    return derived_id(base, f"edit/{row_id}")


def _body_id(body: bytes) -> str:
    """A message without any id still gets a stable one: the same bytes, the same id."""
    return str(uuid.uuid5(_ID_NAMESPACE, hashlib.sha256(body).hexdigest()))


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _safe_reference(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return identifiers.check(IdKind.REFERENCE, value)
    except identifiers.IdentifierError:
        return None
