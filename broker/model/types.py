"""Field annotations shared by the domain model.

The model stays free of XML: these small markers only say what a value *is* (an identifier of some
kind, a bounded text, a bounded list). The dialect bindings read them to build schemas and to run the
identifier rules, so each rule lives in one place (broker.contract.identifiers).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated


class IdKind(StrEnum):
    """Identifier kinds validated by broker.contract.identifiers."""

    PATIENT = "patient-id"  # personnummer, samordningsnummer or reservnummer
    HSA_ID = "hsa-id"
    ORGANISATION_NUMBER = "organisation-number"
    GLN = "gln"
    CUSTOMER_NUMBER = "customer-number"
    ARTICLE_NUMBER = "article-number"
    ISO9999 = "iso9999"
    INDIVIDUAL_NUMBER = "individual-number"
    MESSAGE_ID = "message-id"
    REFERENCE = "reference"  # order numbers and other business references
    SESAM2_ORDER_NUMBER = "sesam2-order-number"
    POSTAL_CODE = "postal-code"  # Swedish, NNN NN
    MUNICIPALITY_CODE = "municipality-code"  # SCB's kommunkod, NNNN
    PRESCRIBER_CODE = "prescriber-code"  # förskrivarkod


@dataclass(frozen=True)
class Identifier:
    kind: IdKind


@dataclass(frozen=True)
class Text:
    max_length: int


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of a whole number."""

    min: int
    max: int


@dataclass(frozen=True)
class Items:
    """Bounds of a repeated group: the schema refuses fewer or more."""

    min: int = 1
    max: int = 999


PatientId = Annotated[str, Identifier(IdKind.PATIENT)]
HsaId = Annotated[str, Identifier(IdKind.HSA_ID)]
OrganisationNumber = Annotated[str, Identifier(IdKind.ORGANISATION_NUMBER)]
Gln = Annotated[str, Identifier(IdKind.GLN)]
CustomerNumber = Annotated[str, Identifier(IdKind.CUSTOMER_NUMBER)]
ArticleNumber = Annotated[str, Identifier(IdKind.ARTICLE_NUMBER)]
Iso9999Code = Annotated[str, Identifier(IdKind.ISO9999)]
IndividualNumber = Annotated[str, Identifier(IdKind.INDIVIDUAL_NUMBER)]
MessageId = Annotated[str, Identifier(IdKind.MESSAGE_ID)]
Reference = Annotated[str, Identifier(IdKind.REFERENCE)]
Sesam2OrderNumber = Annotated[str, Identifier(IdKind.SESAM2_ORDER_NUMBER)]

LineNumber = Annotated[int, Range(1, 9999)]
Quantity = Annotated[int, Range(1, 99999)]
# An invoice line's quantity (1.1): negative on a credit line, which names the invoice it credits
# (broker/contract/rules.py); 1.0 keeps Quantity (broker/contract/mapping.py: F.before).
InvoiceQuantity = Annotated[int, Range(-99999, 99999)]
StockQuantity = Annotated[int, Range(0, 999999)]

Name = Annotated[str, Text(100)]
Code = Annotated[str, Text(35)]
Phone = Annotated[str, Text(35)]
Line = Annotated[str, Text(200)]
Description = Annotated[str, Text(4000)]
Url = Annotated[str, Text(500)]
PostalCode = Annotated[str, Identifier(IdKind.POSTAL_CODE)]
MunicipalityCode = Annotated[str, Identifier(IdKind.MUNICIPALITY_CODE)]
PrescriberCode = Annotated[str, Identifier(IdKind.PRESCRIBER_CODE)]


@dataclass(frozen=True)
class MonthPrecision:
    """A date that stands for a whole calendar month (always day 1)."""


Month = Annotated[date, MonthPrecision()]
