"""The pipeline: every delivery of a batch passes the same named stages, in one direction, in one unit of work.

    read -> deduplicate -> store -> check -> handle (the registered reactions) -> settle

- read: hardened parse, XSD, binding, identifier rules (broker/contract); refusals are Problems, not errors.
- deduplicate: a message id processed before is recorded as a repeat and sends nothing again.
- store: the message row, with its payload and envelope (the store is the source of truth).
- check: rules beyond the document (broker/checks.py); any problem rejects the message, with a Rejection
  to its real sender (broker/rejections.py).
- handle: the reactions registered for the message's type (broker/handlers/), in registration order.
- settle: the delivery's policy finishes (a replay records itself and settles its original).

Nothing here touches AMQP: what must go out is written to the outbox in the same transaction as the state
change, and the runtime publishes it after the commit. A permanent fault never stops the other messages of
the batch. How a replay differs from a first delivery is its policy (broker/replays.py), handed in.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from broker import checks, rejections
from broker.catalog import CHECKED, Catalog, LiveCatalog
from broker.config import Settings
from broker.contract import routing
from broker.contract.dialect import DIALECTS, Parsed, ReadPolicy, read
from broker.envelope import Delivery, Exchange, Outgoing, Replay
from broker.handlers import Context, Registry, default_registry, order_view
from broker.model import messages as m
from broker.model.codes import Side
from broker.replays import FIRST_DELIVERY, Policy, ReplayPolicy
from broker.store.unit_of_work import NewMessage, Stepped, UnitOfWork

log = logging.getLogger(__name__)
_ID_NAMESPACE = uuid.UUID("0f5f8a4e-2d52-4b8e-a7c1-3d9b6a1e4c27")
_CUSTOMER, _SESAM2 = DIALECTS[Side.CUSTOMER], DIALECTS[Side.SESAM2]
KEPT_OVERSIZED_BYTES = 64 * 1024  # what is stored of a payload over the size limit: enough to see what it was


@dataclass
class Item:
    """One delivery on its way through the stages."""

    delivery: Delivery
    parsed: Parsed
    message_id: str
    read_ms: float  # how long reading it took (the validate step's duration)
    policy: Policy


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        catalog: Catalog | None = None,
        registry: Registry | None = None,
        replay_policy: Callable[[Replay], Policy] = ReplayPolicy,
    ) -> None:
        self.settings = settings
        self.catalog = catalog  # HMC_CATALOG's file, under the store's register
        self.register = LiveCatalog(catalog)
        self.registry = registry or default_registry()
        self.replay_policy = replay_policy
        self.read_policy = ReadPolicy(limits=settings.xml_limits, reserve_patterns=settings.reserve_patterns)

    def handle(self, batch: Sequence[Delivery], uow: UnitOfWork) -> None:
        """A batch: read every delivery, let the reactions prepare, then each new message in turn."""
        items = [self.read(d) for d in batch]
        messages = [i.parsed.message for i in items if i.parsed.message]
        self.registry.prepare(messages, uow, self.settings)
        catalog = self._catalog(messages, uow)
        for side, direction in checks.DIRECTION.items():
            mine = [i for i in items if i.delivery.side is side]
            originals: dict[str, Stepped] = {
                **uow.originals(direction.value, (i.message_id for i in mine if i.policy.deduplicate))
            }
            for item in mine:
                if not item.policy.deduplicate:
                    self.handle_message(item, uow, catalog)
                elif (original := originals.get(item.message_id)) is not None:
                    # A redelivery or a resend: processed once already; record it, send nothing again.
                    uow.event(original, "dedupe", "duplicate", "the same message id arrived again")
                else:
                    originals[item.message_id] = self.handle_message(item, uow, catalog)

    def handle_message(self, item: Item, uow: UnitOfWork, catalog: Catalog | None) -> NewMessage:
        """One new message: store -> check -> handle by type (or reject) -> settle."""
        item.policy.before_store(uow)
        row = self.store(item, uow)
        item.policy.after_store(row, uow)
        problems = self.check(item, catalog)
        message = item.parsed.message
        again = order_view.reopened(message, uow) if message is not None and not problems else None
        if again is not None and message is not None and self._same_as_first(again, message, uow):
            # A retry under a fresh message id: recorded, and nothing sent again (SESAM2 acts once per order).
            uow.event(row, "validate", "ok", None, item.read_ms)
            detail = f"order {again.order_id} was opened by message {again.first_message_id}; the same content again"
            uow.event(row, "dedupe", "repeat", detail)
            uow.set_status(row, "repeat")
        elif again is not None and message is not None:
            self.reject(row, item, [self._duplicate_order(again, message, item)], uow)
        elif problems or message is None:
            self.reject(row, item, problems, uow)
        else:
            uow.event(row, "validate", "ok", None, item.read_ms)
            self.registry.dispatch(self._context(row, item, message, uow))
        item.policy.settle(row, uow)
        return row

    # ---------------------------------------------------------------- the stages

    def read(self, delivery: Delivery) -> Item:
        started = time.perf_counter()
        parsed = read(delivery.body, self.read_policy)
        message_id = (delivery.message_id or parsed.claimed_message_id or _body_id(delivery.body))[:64]
        policy = self.replay_policy(delivery.replay) if delivery.replay is not None else FIRST_DELIVERY
        return Item(delivery, parsed, message_id, (time.perf_counter() - started) * 1000, policy)

    def store(self, item: Item, uow: UnitOfWork) -> NewMessage:
        d, parsed = item.delivery, item.parsed
        message = parsed.message
        header = message.header if message else None
        patient = m.patient_id_of(message)
        return uow.add_message(
            message_id=item.message_id,
            direction=checks.DIRECTION[d.side].value,
            message_type=type(message).__name__ if message else parsed.root_name,
            customer_number=(header.customer_number if header else None) or checks.claimed_customer(d, parsed),
            correlation_id=(header.correlation_id if header else None) or d.correlation_id,
            order_ref=routing.reference(message) if message else None,
            patient_ref=uow.patient_ref(patient, self.settings.reserve_patterns) if patient else None,
            status="received",
            **_kept_payload(d.body, self.settings.max_message_bytes, _properties(d)),
            replay_of=d.replay.of if d.replay else None,
        )

    def check(self, item: Item, catalog: Catalog | None) -> list[m.Problem]:
        d = item.delivery
        problems = list(item.parsed.problems) + checks.check(self.settings, catalog, d, item.parsed)
        for p in problems:
            if p.rule.startswith("security."):  # someone sends for a customer it does not own
                log.warning(
                    "security event: %s",
                    p.message,
                    extra={
                        "rule": p.rule,
                        "user_id": d.user_id,
                        "routing_key": d.routing_key[:64],
                        "sender": checks.sender(self.settings, d),
                        "message_id": item.message_id,
                    },
                )
        return problems

    def reject(self, row: NewMessage, item: Item, problems: list[m.Problem], uow: UnitOfWork) -> None:
        summary = rejections.summary(problems)
        uow.event(row, "validate", "rejected", summary, item.read_ms)
        uow.set_status(row, "rejected", summary)
        addressed = rejections.rejection_for(self.settings, item.delivery, row, item.message_id, problems)
        if addressed is not None:
            self._send(row, item, uow, addressed.rejection, addressed.exchange, addressed.routing_key)
            uow.event(row, "reject", "ok", f"Rejection with {len(problems)} problem(s)")
        elif item.delivery.side is Side.CUSTOMER:
            uow.event(row, "reject", "unroutable", "sender unknown (and no usable reply_to): kept for inspection only")

    def _catalog(self, messages: Sequence[m.Message], uow: UnitOfWork) -> Catalog | None:
        """The catalog this batch is checked against: the store's committed register over HMC_CATALOG's file
        (one primary-key read, and only for a batch with something to check)."""
        if not any(isinstance(x, CHECKED) for x in messages):
            return None
        return self.register.current(uow.articles.version(), uow.articles.all)

    # ---------------------------------------------------------------- one order per order id

    def _same_as_first(self, again: order_view.Reopened, message: m.Message, uow: UnitOfWork) -> bool:
        """Whether the message that opened the order said the same (its stored payload read again)."""
        payload = uow.payload_of(again.first_message_id) if again.first_message_id else None
        first = read(payload, self.read_policy).message if payload else None
        return first is not None and order_view.same_business_content(first, message)

    def _duplicate_order(self, again: order_view.Reopened, message: m.Message, item: Item) -> m.Problem:
        found = routing.route(type(message))
        dialect = item.parsed.dialect
        path = (
            dialect.binding.element_path(type(message), found.reference)
            if dialect and found and found.reference
            else None
        )
        first = f"message {again.first_message_id}" if again.first_message_id else "an earlier message"
        return m.Problem(
            rule="order.duplicate",
            message=f"order {again.order_id} was already received as {first} with other content;"
            " a change to an order needs a new order id",
            path=path,
        )

    # ---------------------------------------------------------------- the outbox

    def _context(self, row: NewMessage, item: Item, message: m.Message, uow: UnitOfWork) -> Context:
        def send(out: m.Message, exchange: Exchange, routing_key: str) -> None:
            self._send(row, item, uow, out, exchange, routing_key)

        return Context(message, row, item.delivery, uow, self.settings, send)

    def _send(
        self, row: NewMessage, item: Item, uow: UnitOfWork, message: m.Message, exchange: Exchange, routing_key: str
    ) -> None:
        """Write one outgoing message to the outbox, in the dialect of the side it goes to."""
        allowed = item.policy.outgoing(row, message, uow)
        if allowed is None:
            return
        dialect = _SESAM2 if exchange is Exchange.SESAM2_OUT else _CUSTOMER
        header = allowed.header
        # A customer gets the customer dialect's version it speaks (an unknown one the oldest).
        customer = self.settings.customer(header.customer_number) if dialect is _CUSTOMER else None
        version = customer.schema_version if customer else m.SCHEMA_VERSIONS[0] if dialect is _CUSTOMER else None
        body = dialect.render(allowed, version)
        uow.add_outgoing(
            row,
            Outgoing(
                exchange=exchange,
                routing_key=routing_key,
                body=body,
                message_id=header.message_id,
                message_type=type(allowed).__name__,
                correlation_id=header.correlation_id or routing.reference(allowed),
                schema_version=version or header.schema_version,
                timestamp=int((header.forwarded_at or header.sent_at).timestamp()),  # when it left the broker
            ),
        )


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


def _body_id(body: bytes) -> str:
    """A message without any id still gets a stable one: the same bytes, the same id."""
    return str(uuid.uuid5(_ID_NAMESPACE, hashlib.sha256(body).hexdigest()))
