"""What a customer system receives, as typed objects: OrderConfirmation, OrderStatusReply, Rejection, and
Answer for every other type (its header typed, its document at hand).

Element names are the customer dialect's (schemas/customer, MAPPING.md); `parse()` reads a body that
Contract.read() has already validated, so a required element is always there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from lxml import etree

from hmc_client.contract import Contract, Document, Problem


@dataclass(frozen=True, kw_only=True)
class Header:
    message_id: str
    message_type: str
    schema_version: str
    sent_at: str
    sender_system: str
    customer_number: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Answer:
    """Any message a consumer receives; the typed subclasses below add their fields."""

    type: str
    header: Header
    routing_key: str
    document: Document

    @property
    def message_id(self) -> str:
        return self.header.message_id

    @property
    def correlation_id(self) -> str | None:
        return self.document.correlation_id


@dataclass(frozen=True, kw_only=True)
class ConfirmedLine:
    line_number: int
    article_number: str
    quantity: int
    delivery_date: date
    billing_form: str
    individual_number: str | None = None


@dataclass(frozen=True, kw_only=True)
class OrderConfirmation(Answer):
    order_id: str
    hmc_order_number: str
    lines: tuple[ConfirmedLine, ...]


@dataclass(frozen=True, kw_only=True)
class StatusLine:
    line_number: int
    article_number: str
    quantity: int
    status: str
    delivery_date: date | None = None


@dataclass(frozen=True, kw_only=True)
class OrderStatusReply(Answer):
    order_id: str
    status: str  # received, sent, confirmed, delayed, delivered, cancelled, rejected, unknown
    updated_at: datetime
    hmc_order_number: str | None
    lines: tuple[StatusLine, ...]


@dataclass(frozen=True, kw_only=True)
class Rejection(Answer):
    """The broker refused a message: which one (when it could tell) and every reason."""

    rejected_message_id: str | None
    rejected_type: str | None
    received_at: datetime
    problems: tuple[Problem, ...]


def parse(contract: Contract, body: bytes, routing_key: str = "") -> Answer:
    """A received body as its typed answer (validated first: InvalidMessage when the contract refuses it)."""
    doc = contract.read(body)
    h = doc.header
    header = Header(
        message_id=h["message_id"],
        message_type=h["message_type"],
        schema_version=h["schema_version"],
        sent_at=h["sent_at"],
        sender_system=h["sender_system"],
        customer_number=h.get("customer_number"),
        correlation_id=h.get("correlation_id"),
        causation_id=h.get("causation_id"),
    )
    common: dict[str, Any] = {"type": doc.spec.type, "header": header, "routing_key": routing_key, "document": doc}
    if doc.spec.dialect != "customer":
        return Answer(**common)
    if doc.spec.type == "OrderConfirmation":
        return OrderConfirmation(
            **common,
            order_id=_text(doc, "OrderId"),
            hmc_order_number=_text(doc, "HmcOrderNumber"),
            lines=tuple(
                ConfirmedLine(
                    line_number=int(_text(doc, "LineNumber", line)),
                    article_number=_text(doc, "ArticleNumber", line),
                    quantity=int(_text(doc, "Quantity", line)),
                    delivery_date=date.fromisoformat(_text(doc, "DeliveryDate", line)),
                    billing_form=_text(doc, "BillingForm", line),
                    individual_number=_optional(doc, "IndividualNumber", line),
                )
                for line in _all(doc, "Lines/Line")
            ),
        )
    if doc.spec.type == "OrderStatusReply":
        return OrderStatusReply(
            **common,
            order_id=_text(doc, "OrderId"),
            status=_text(doc, "Status"),
            updated_at=datetime.fromisoformat(_text(doc, "UpdatedAt")),
            hmc_order_number=_optional(doc, "HmcOrderNumber"),
            lines=tuple(
                StatusLine(
                    line_number=int(_text(doc, "LineNumber", line)),
                    article_number=_text(doc, "ArticleNumber", line),
                    quantity=int(_text(doc, "Quantity", line)),
                    status=_text(doc, "Status", line),
                    delivery_date=_date(_optional(doc, "DeliveryDate", line)),
                )
                for line in _all(doc, "Lines/Line")
            ),
        )
    if doc.spec.type == "Rejection":
        return Rejection(
            **common,
            rejected_message_id=_optional(doc, "RejectedMessageId"),
            rejected_type=_optional(doc, "RejectedType"),
            received_at=datetime.fromisoformat(_text(doc, "ReceivedAt")),
            problems=tuple(
                Problem(
                    rule=_text(doc, "Rule", p),
                    message=_text(doc, "Message", p),
                    path=_optional(doc, "Path", p),
                    line=int(n) if (n := _optional(doc, "Line", p)) else None,
                    value=_optional(doc, "Value", p),
                )
                for p in _all(doc, "Problems/Problem")
            ),
        )
    return Answer(**common)


def _q(doc: Document, path: str) -> str:
    return "/".join(f"{{{doc.spec.namespace}}}{step}" for step in path.split("/"))


def _all(doc: Document, path: str) -> list[etree._Element]:
    return list(doc.root.iterfind(_q(doc, path)))


def _optional(doc: Document, path: str, under: etree._Element | None = None) -> str | None:
    found = (under if under is not None else doc.root).find(_q(doc, path))
    return found.text.strip() if found is not None and found.text is not None else None


def _text(doc: Document, path: str, under: etree._Element | None = None) -> str:
    value = _optional(doc, path, under)
    if value is None:  # the XSD requires it: only a contract out of step with this client gets here
        raise ValueError(f"<{doc.spec.element}> has no {path}")
    return value


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None
