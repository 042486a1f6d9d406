"""The hostile messages: each built from a realistic valid order, with what the broker must answer.

A case names the rule(s) its Rejection must carry; `forwarded` marks the one case that must pass
through intact (injection strings in free-text fields are data, not code).
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from adapters.harness.generator import Generator
from broker.contract.dialect import DIALECTS, read
from broker.model import messages as m
from broker.model.codes import Side

CUSTOMER = DIALECTS[Side.CUSTOMER]
MiB = 1024 * 1024

# Strings that must never matter: SQL, a forged JSON log line after a line break, HTML.
INJECTIONS = (
    "'; DROP TABLE messages;--",
    'x\r\n{"level":"critical","event":"forged log line"}',
    "Robert'); DELETE FROM outbox WHERE ('1'='1",
    "<script>alert(1)</script>",
)
ANSI = "\x1b[2J\x1b[31mred\x1b[0m"  # terminal escapes: not even allowed in XML 1.0


NAMES = (
    "XXE, local file",
    "XXE, network",
    "XXE, out-of-band parameter entity",
    "billion laughs",
    "quadratic blow-up",
    "external DTD",
    "XInclude",
    "10 MB body",
    "100 MB body",
    "10,000-deep nesting",
    "broken UTF-8",
    "encoding declaration lies (says UTF-8, is Latin-1)",
    "encoding declaration lies (says ISO-8859-1, is UTF-8)",
    "wrong namespace",
    "missing namespace",
    "unknown message type",
    "forged customer number (user_id owns another customer)",
    "customer number of another customer (routing key mismatch)",
    "SQL and log injection in every text field",
    "SQL and log injection in the free-text fields",
    "ANSI escapes in a text field",
    "SQL and log injection in the AMQP properties",
    "100,000 order lines",
    "1,000 order lines (within the size limit)",
)  # the cases' names, known without building the bodies (100 MB) at collection time


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    rules: tuple[str, ...]  # every rule the Rejection carries must start with one of these
    routing_customer: str = ""  # default: the sender's own customer number
    properties: dict[str, Any] = field(default_factory=dict)  # extra/overriding AMQP properties
    header_message_id: str | None = None  # the document's own MessageId, when it has one
    forwarded: bool = False  # must pass, intact, instead of a Rejection


def rich_order(generator: Generator, customer: str) -> m.CustomerOrder:
    """A valid order with every optional text field filled, so that injection reaches all of them."""
    order = generator.customer_order(customer, variant="patient")
    person = dataclasses.replace(order.prescriber, phone=order.prescriber.phone or "010-1234567")
    return dataclasses.replace(
        order,
        prescriber=person,
        orderer=person,
        note="Ring före leverans",
        delivery=dataclasses.replace(order.delivery, instructions="Portkod 1234", phone="010-7654321"),
        lines=[dataclasses.replace(line, comment="Standard") for line in order.lines],
    )


def with_ids(order: m.CustomerOrder, message_id: str, customer: str | None = None) -> m.CustomerOrder:
    header = dataclasses.replace(order.header, message_id=message_id)
    if customer is not None:
        header = dataclasses.replace(header, customer_number=customer)
    return dataclasses.replace(order, header=header)


def text_paths(value: Any, path: str = "") -> Iterator[str]:
    """Every plain text field of a message, as a dotted path (lists indexed)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from text_paths(getattr(value, f.name), f"{path}.{f.name}" if path else f.name)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from text_paths(item, f"{path}[{i}]")
    elif isinstance(value, str) and not isinstance(value, enum.Enum):
        yield path


def replaced(value: Any, path: str, text: str) -> Any:
    """A copy of `value` with the text field at `path` set to `text`."""
    head, _, rest = path.partition(".")
    name, index = re.fullmatch(r"(\w+)(?:\[(\d+)\])?", head).groups()  # type: ignore[union-attr]
    child = getattr(value, name)
    if index is not None:
        items = list(child)
        items[int(index)] = replaced(items[int(index)], rest, text) if rest else text
        return dataclasses.replace(value, **{name: items})
    return dataclasses.replace(value, **{name: replaced(child, rest, text) if rest else text})


def free_text(order: m.CustomerOrder) -> list[tuple[str, str]]:
    """The text fields that take an injection string as valid data, each with one it takes (in turn)."""
    out = []
    for i, path in enumerate(text_paths(order)):
        for text in INJECTIONS[i % len(INJECTIONS) :] + INJECTIONS[: i % len(INJECTIONS)]:
            if read(CUSTOMER.render(replaced(order, path, text))).ok:
                out.append((path, text))
                break
    return out


def injected(order: m.CustomerOrder, fields: list[tuple[str, str]]) -> m.CustomerOrder:
    for path, text in fields:
        order = replaced(order, path, text)
    return order


def _padded(body: bytes, size: int) -> bytes:
    """The order grown to `size` bytes by a comment inside the root: well-formed, just too big."""
    filler = size - len(body) - len(b"<!---->")
    return body.replace(b"</CustomerOrder>", b"<!--" + b"x" * max(filler, 0) + b"--></CustomerOrder>")


def _many_lines(body: bytes, count: int) -> bytes:
    start, end = body.index(b"<Line>"), body.rindex(b"</Line>") + len(b"</Line>")
    line = re.sub(
        rb"<LineNumber>\d+</LineNumber>", b"<LineNumber>%d</LineNumber>", body[start:end].split(b"</Line>")[0]
    )
    lines = b"".join(line % i + b"</Line>" for i in range(1, count + 1))
    return body[:start] + lines + body[end:]


def cases(
    generator: Generator,
    sender: str,
    victim: str,
    secret_file: str,
    http_url: str,
    new_id: Callable[[], str],
) -> list[Case]:
    """Every hostile case; `sender` is the customer the test's AMQP user owns, `victim` another's."""
    base = rich_order(generator, sender)

    def valid(order: m.CustomerOrder | None = None, customer: str | None = None) -> tuple[bytes, str]:
        message_id = new_id()
        return CUSTOMER.render(with_ids(order or base, message_id, customer)), message_id

    body, _ = valid()
    file_url = f"file://{secret_file}"
    doctype = b"<!DOCTYPE CustomerOrder [\n%s\n]>\n"

    def with_doctype(decl: bytes, reference: bytes, where: bytes = b"<Note>") -> bytes:
        out = body.replace(b"<CustomerOrder ", doctype % decl + b"<CustomerOrder ", 1)
        return out.replace(where, where + reference, 1)

    lol = b"\n".join(
        [b'<!ENTITY lol0 "lol">'] + [b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)]
    )
    big = b'<!ENTITY a "' + b"a" * 50_000 + b'">'
    deep = b"<Deep>" * 10_000 + b"</Deep>" * 10_000
    free = free_text(base)
    every = [(path, INJECTIONS[i % len(INJECTIONS)]) for i, path in enumerate(text_paths(base))]
    forged, forged_id = valid(customer=victim)
    mismatched, mismatched_id = valid(customer=victim)
    free_body, free_id = valid(injected(base, free))
    every_body, _ = valid(injected(base, every))
    props_body, props_id = valid()
    return [
        Case(
            "XXE, local file",
            with_doctype(f'<!ENTITY xxe SYSTEM "{file_url}">'.encode(), b"&xxe;"),
            ("xml.dtd-forbidden",),
        ),
        Case(
            "XXE, network",
            with_doctype(f'<!ENTITY xxe SYSTEM "{http_url}/xxe">'.encode(), b"&xxe;"),
            ("xml.dtd-forbidden",),
        ),
        Case(
            "XXE, out-of-band parameter entity",
            with_doctype(f'<!ENTITY % ext SYSTEM "{http_url}/oob.dtd"> %ext;'.encode(), b""),
            ("xml.dtd-forbidden",),
        ),
        Case("billion laughs", with_doctype(lol, b"&lol9;"), ("xml.dtd-forbidden",)),
        Case("quadratic blow-up", with_doctype(big, b"&a;" * 50_000), ("xml.dtd-forbidden",)),
        Case(
            "external DTD",
            body.replace(
                b"<CustomerOrder ",
                f'<!DOCTYPE CustomerOrder SYSTEM "{http_url}/evil.dtd">\n'.encode() + b"<CustomerOrder ",
                1,
            ),
            ("xml.dtd-forbidden",),
        ),
        Case(
            "XInclude",
            body.replace(
                b"<Note>",
                b'<Note><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="%s" parse="text"/>'
                % file_url.encode(),
                1,
            ),
            ("xml.xinclude-forbidden",),
        ),
        Case("10 MB body", _padded(body, 10 * MiB), ("xml.too-large",)),
        Case("100 MB body", _padded(body, 100 * MiB), ("xml.too-large",)),
        Case("10,000-deep nesting", body.replace(b"<Note>", deep + b"<Note>", 1), ("xml.too-deep",)),
        Case("broken UTF-8", body.replace(b"</City>", b"\xc3\x28\xff</City>", 1), ("xml.encoding",)),
        Case(
            "encoding declaration lies (says UTF-8, is Latin-1)",
            body.replace(b"</City>", "Malmö".encode("latin-1") + b"</City>", 1),
            ("xml.encoding",),
        ),
        Case(
            "encoding declaration lies (says ISO-8859-1, is UTF-8)",
            body.replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'", 1),
            ("xml.encoding",),
        ),
        Case(
            "wrong namespace",
            body.replace(b"urn:x-hmc-broker:customer:v1", b"urn:x-hmc-broker:customer:v2", 1),
            ("xml.namespace",),
        ),
        Case("missing namespace", body.replace(b' xmlns="urn:x-hmc-broker:customer:v1"', b"", 1), ("xml.namespace",)),
        Case(
            "unknown message type",
            body.replace(b"<CustomerOrder ", b"<PurchaseOrder ", 1).replace(
                b"</CustomerOrder>", b"</PurchaseOrder>", 1
            ),
            ("message.unknown-type",),
        ),
        Case(
            "forged customer number (user_id owns another customer)",
            forged,
            ("security.forged-customer",),
            routing_customer=victim,
            header_message_id=forged_id,
        ),
        Case(
            "customer number of another customer (routing key mismatch)",
            mismatched,
            ("security.customer-mismatch",),
            header_message_id=mismatched_id,
        ),
        Case(
            "SQL and log injection in every text field",
            every_body,
            ("schema.",),
        ),
        Case(
            "SQL and log injection in the free-text fields",
            free_body,
            (),
            header_message_id=free_id,
            forwarded=True,
        ),
        Case("ANSI escapes in a text field", body.replace(b"<Note>", b"<Note>" + ANSI.encode(), 1), ("xml.malformed",)),
        Case(
            "SQL and log injection in the AMQP properties",
            props_body,
            ("envelope.message-id",),
            properties={
                "message_id": INJECTIONS[1] + ANSI,
                "correlation_id": INJECTIONS[0],
                "type": INJECTIONS[2],
                "headers": {"x-schema-version": INJECTIONS[1], "x-note": INJECTIONS[0] + ANSI},
            },
            header_message_id=props_id,
        ),
        Case("100,000 order lines", _many_lines(body, 100_000), ("xml.too-large",)),
        Case("1,000 order lines (within the size limit)", _many_lines(body, 1_000), ("schema.structure",)),
    ]
