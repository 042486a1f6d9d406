"""A customer system places an order through HMC Broker and waits for SESAM2's confirmation.

    python customer_system.py --url amqp://guest:guest@localhost:5672/%2F --customer 1001 --order order.xml
    python customer_system.py --url amqps://rabbitmq.example:5671/hmc --customer 1001 --user-id websesam-skane \\
        --ca ca.pem --cert client.pem --key client.key --order order.xml

The order (a CustomerOrder in the customer dialect) gets a fresh MessageId, SentAt and OrderId unless
--keep-ids is given, so that running the example twice places two orders. It prints the confirmation (or the
Rejection, with every problem) and exits 0 when the order was confirmed.
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

from hmc_client import HmcClient, OrderConfirmation, Rejection, Role, Tls
from hmc_client.messages import Answer
from lxml import etree

NS = "urn:x-hmc-broker:customer:v1"


class OrderRejected(Exception):
    def __init__(self, rejection: Rejection) -> None:
        super().__init__("; ".join(str(p) for p in rejection.problems))
        self.rejection = rejection


def fresh(order: bytes, customer: str) -> tuple[bytes, str]:
    """The order with a new MessageId, SentAt, OrderId (and CorrelationId), for `customer`; and its OrderId."""
    root = etree.fromstring(order, etree.XMLParser(resolve_entities=False, no_network=True))
    order_id = f"EX-{customer}-{uuid.uuid4().hex[:12]}"
    for path, value in (
        ("Header/MessageId", str(uuid.uuid4())),
        ("Header/SentAt", datetime.now(UTC).replace(microsecond=0).isoformat()),
        ("Header/CustomerNumber", customer),
        ("Header/CorrelationId", order_id),
        ("OrderId", order_id),
    ):
        element = root.find("/".join(f"{{{NS}}}{step}" for step in path.split("/")))
        if element is None and path != "Header/CorrelationId":  # the correlation id is optional
            raise ValueError(f"the order has no {path}")
        if element is not None:
            element.text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8"), order_id


def place_order(client: HmcClient, order: bytes, timeout: float = 60.0) -> OrderConfirmation:
    """Publish the order and wait for its confirmation; OrderRejected when the broker refuses it."""
    sent = client.publish(order)
    order_id = client.validate(order).find("OrderId")

    def about_this_order(answer: Answer) -> bool:
        if isinstance(answer, Rejection):
            return answer.rejected_message_id == sent.message_id
        return isinstance(answer, OrderConfirmation) and answer.order_id == order_id

    answer = client.wait_for(about_this_order, timeout)
    if isinstance(answer, Rejection):
        raise OrderRejected(answer)
    assert isinstance(answer, OrderConfirmation)
    return answer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="RabbitMQ, amqp:// or amqps://")
    parser.add_argument("--customer", required=True, help="your customer number")
    parser.add_argument("--user-id", help="your RabbitMQ user (default: the URL's user)")
    parser.add_argument("--ca", help="with amqps: the CA that signed RabbitMQ's certificate")
    parser.add_argument("--cert", help="your client certificate (its common name is your RabbitMQ user)")
    parser.add_argument("--key", help="its private key")
    parser.add_argument("--prefix", default="", help="the environment's prefix of every name (e.g. test.)")
    parser.add_argument("--contract", help="a contract bundle directory (default: the one shipped inside)")
    parser.add_argument("--order", required=True, type=Path, help="a CustomerOrder in the customer dialect")
    parser.add_argument("--keep-ids", action="store_true", help="send the order's ids as they are")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    tls = Tls(args.ca, args.cert, args.key) if args.ca else None
    from hmc_client import Contract

    contract = Contract.load(args.contract) if args.contract else None
    order = args.order.read_bytes()
    if not args.keep_ids:
        order, _ = fresh(order, args.customer)
    with HmcClient(
        args.url, Role.customer(args.customer), user_id=args.user_id, tls=tls, prefix=args.prefix, contract=contract
    ) as client:
        try:
            confirmation = place_order(client, order, args.timeout)
        except OrderRejected as e:
            print(f"rejected: {e}", file=sys.stderr)
            return 1
    print(f"confirmed: order {confirmation.order_id} is HMC order {confirmation.hmc_order_number}")
    for line in confirmation.lines:
        print(f"  line {line.line_number}: {line.quantity} x {line.article_number} on {line.delivery_date}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
