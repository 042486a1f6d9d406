"""A minimal SESAM2: consume sesam2.in and confirm every order (ORDERS) with an ORDERBEKR, through the client.

    python sesam2.py --url amqp://guest:guest@localhost:5672/%2F [--count 1] [--timeout 60]

Every line is confirmed for delivery in three days, billed as a rental (HYR). Other message types are
acknowledged and left unanswered. SESAM2 publishes to hmc.sesam2.in with its own RabbitMQ user.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime, timedelta

from hmc_client import Answer, HmcClient, Role, Tls
from lxml import etree

NS = "urn:x-hmc-broker:sesam2:v1"


def _el(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, f"{{{NS}}}{name}")
    child.text = text
    return child


def confirmation(order: Answer, now: datetime | None = None) -> bytes:
    """The ORDERBEKR for an ORDERS: every line confirmed, delivery in three days."""
    now = now or datetime.now(UTC)
    doc = order.document
    root = etree.Element(f"{{{NS}}}ORDERBEKR", nsmap={None: NS})
    ctrl = _el(root, "CTRL")
    external = doc.find("HEAD/EXTORDNR") or ""
    for name, value in (
        ("MSGID", str(uuid.uuid4())),
        ("MSGTYP", "ORDERBEKR"),
        ("VERSION", doc.schema_version),
        ("SKAPAD", now.strftime("%Y%m%d%H%M%S")),
        ("AVSSYS", "SESAM2"),
        ("KUNDNR", doc.customer_number),
        ("REFID", external),
        ("ORSAKID", doc.message_id),
    ):
        _el(ctrl, name, value)
    head = _el(root, "HEAD")
    _el(head, "EXTORDNR", external)
    _el(head, "ORDNR", f"41{uuid.uuid4().int % 10**8:08d}")
    delivery = (now + timedelta(days=3)).strftime("%Y%m%d")
    for row in doc.root.iterfind(f"{{{NS}}}ROW"):
        out = _el(root, "ROW")
        for name in ("RADNR", "ARTNR", "ANTAL"):
            _el(out, name, row.findtext(f"{{{NS}}}{name}"))
        _el(out, "LEVDAT", delivery)
        _el(out, "DEBFORM", "HYR")
    body: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return body


def serve(client: HmcClient, count: int | None, timeout: float) -> int:
    """Confirm orders until `count` messages are handled or none came for `timeout` seconds."""
    handled = 0

    def answer(message: Answer) -> bool:
        nonlocal handled
        if message.type == "CustomerOrder":
            client.publish(confirmation(message))
        handled += 1
        return count is not None and handled >= count

    client.consume(answer, timeout=timeout)
    return handled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--user-id")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--count", type=int, help="stop after this many messages")
    parser.add_argument("--timeout", type=float, default=60.0, help="stop when nothing came for this long")
    args = parser.parse_args(argv)
    tls = Tls(args.ca, args.cert, args.key) if args.ca else None
    with HmcClient(args.url, Role.sesam2(), user_id=args.user_id, tls=tls, prefix=args.prefix) as client:
        handled = serve(client, args.count, args.timeout)
    print(f"handled {handled} message(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
