"""The bench's messages: realistic customer orders (about 2 KB, three lines) and SESAM2 confirmations.

Each message is a copy of a valid template with its own MessageId (a UUID), OrderId and CorrelationId,
so that the broker stores, translates and de-duplicates every one as a different order. The templates
are copies of the fixtures CustomerOrder-patient-urgent and OrderConfirmation-two-lines (synthetic
identifiers only); `check()` proves at start that a generated copy still passes the broker's reader.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from broker.contract.dialect import read

TEMPLATES = Path(__file__).with_name("templates")
CUSTOMER = "1002"  # the customer number in the order template
ORDER_KEY = f"{CUSTOMER}.CustomerOrder"  # routing key on hmc.customer.in
CONFIRMATION_KEY = "OrderConfirmation"  # routing key on hmc.sesam2.in

# What is replaced in the templates; each must occur as counted, or the template changed under us.
_ORDER_ID = b"58156064-d632-45b6-90ad-f49cc0ab6b60"
_ORDER_REF = b"WS-1002-2026-004817"  # CorrelationId and OrderId
_CONF_ID = b"bc26bcfe-be6b-40fd-9ddb-dcd30b2ebc0a"
_CONF_REF = b"WS-1001-2026-011374"  # REFID and EXTORDNR
# The confirmation answers the order: same customer, the order's articles, one of each.
_CONF_EDITS = (
    (b"<KUNDNR>1001</KUNDNR>", f"<KUNDNR>{CUSTOMER}</KUNDNR>".encode()),
    (b"<ARTNR>120606</ARTNR>", b"<ARTNR>181210</ARTNR>"),
    (b"<ARTNR>093303</ARTNR>", b"<ARTNR>043306</ARTNR>"),
    (b"<ANTAL>4</ANTAL>", b"<ANTAL>1</ANTAL>"),
    (b"<ANTAL>6</ANTAL>", b"<ANTAL>1</ANTAL>"),
)


@dataclass(frozen=True)
class Sample:
    """One message to publish: its body and the two ids its AMQP properties carry."""

    message_id: str
    order_id: str  # also the AMQP correlation_id, unique per order in the bench's data
    message_type: str
    body: bytes


def _expect(template: bytes, needle: bytes, count: int, name: str) -> None:
    found = template.count(needle)
    if found != count:
        raise RuntimeError(f"bench template {name}: expected {needle!r} {count} time(s), found {found}")


class Data:
    """Orders and confirmations of one bench run; order ids carry the run id so runs never meet."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.order_template = (TEMPLATES / "CustomerOrder.xml").read_bytes()
        _expect(self.order_template, _ORDER_ID, 1, "CustomerOrder.xml")
        _expect(self.order_template, _ORDER_REF, 2, "CustomerOrder.xml")
        conf = (TEMPLATES / "ORDERBEKR.xml").read_bytes()
        _expect(conf, _CONF_ID, 1, "ORDERBEKR.xml")
        _expect(conf, _CONF_REF, 2, "ORDERBEKR.xml")
        for old, new in _CONF_EDITS:
            _expect(conf, old, 1, "ORDERBEKR.xml")
            conf = conf.replace(old, new)
        self.confirmation_template = conf
        self._next = 0

    def order_ref(self, seq: int) -> str:
        return f"B{self.run_id}-{seq:08d}"

    def orders(self, count: int) -> list[Sample]:
        """`count` new orders, never generated before in this run."""
        start, self._next = self._next, self._next + count
        out = []
        for seq in range(start, start + count):
            message_id, ref = str(uuid.uuid4()), self.order_ref(seq)
            body = self.order_template.replace(_ORDER_ID, message_id.encode()).replace(_ORDER_REF, ref.encode())
            out.append(Sample(message_id, ref, "CustomerOrder", body))
        return out

    def confirmations(self, orders: list[Sample]) -> list[Sample]:
        """SESAM2's OrderConfirmation of each order (both of the first two lines, with a delivery date)."""
        out = []
        for order in orders:
            message_id = str(uuid.uuid4())
            body = self.confirmation_template.replace(_CONF_ID, message_id.encode()).replace(
                _CONF_REF, order.order_id.encode()
            )
            out.append(Sample(message_id, order.order_id, "OrderConfirmation", body))
        return out

    def check(self) -> None:
        """A generated order and confirmation pass the broker's own reader, or the bench refuses to start."""
        order = self.orders(1)[0]
        for sample in (order, self.confirmations([order])[0]):
            parsed = read(sample.body)
            if not parsed.ok:
                problems = "; ".join(f"{p.rule} {p.path}: {p.message}" for p in parsed.problems)
                raise RuntimeError(f"bench {sample.message_type} template is not valid: {problems}")
