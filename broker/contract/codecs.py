"""Value codecs: how one model value is written as element text in each dialect, and its XSD type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

XS = "http://www.w3.org/2001/XMLSchema"
STOCKHOLM = ZoneInfo("Europe/Stockholm")  # SESAM2 writes local Swedish time without an offset
CENT = Decimal("0.01")


class DecodeError(ValueError):
    """A value that passed the schema but does not make sense (30 February, an unknown code)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def _restriction(name: str, base: str, facets: list[tuple[str, str]], doc: str = "") -> etree._Element:
    st = etree.Element(f"{{{XS}}}simpleType", name=name)
    if doc:
        ann = etree.SubElement(st, f"{{{XS}}}annotation")
        etree.SubElement(ann, f"{{{XS}}}documentation").text = doc
    r = etree.SubElement(st, f"{{{XS}}}restriction", base=base)
    for facet, value in facets:
        etree.SubElement(r, f"{{{XS}}}{facet}", value=value)
    return st


class Codec:
    """Base: text in, value out, and the named simple type that bounds the text in the XSD."""

    type_name: str = ""

    def decode(self, text: str) -> object:
        raise NotImplementedError

    def encode(self, value: object) -> str:
        raise NotImplementedError

    def xsd(self) -> etree._Element | None:
        """The simple type definition, or None when type_name is a built-in xs: type."""
        return None


@dataclass
class TextCodec(Codec):
    max_length: int

    def __post_init__(self) -> None:
        self.type_name = f"Text{self.max_length}"

    def decode(self, text: str) -> object:
        # The schema's minLength lets "   " through; a name or street of spaces only is no name.
        if text.isspace():
            raise DecodeError("blank", "must contain a character other than white space")
        return text

    def encode(self, value: object) -> str:
        return str(value)

    def xsd(self) -> etree._Element:
        return _restriction(self.type_name, "xs:string", [("minLength", "1"), ("maxLength", str(self.max_length))])


@dataclass
class IdentifierCodec(Codec):
    """The schema only bounds the length; the rules live in broker.contract.identifiers."""

    kind: str

    def __post_init__(self) -> None:
        self.type_name = "".join(part.title() for part in self.kind.split("-")) + "Type"

    def decode(self, text: str) -> object:
        return text

    def encode(self, value: object) -> str:
        return str(value)

    def xsd(self) -> etree._Element:
        doc = f"Identifier of kind '{self.kind}', validated by the broker (rules '{self.kind}.*')."
        return _restriction(self.type_name, "xs:string", [("minLength", "1"), ("maxLength", "64")], doc)


@dataclass
class IntCodec(Codec):
    min: int
    max: int

    def __post_init__(self) -> None:
        self.type_name = f"Int{self.min}To{self.max}"

    def decode(self, text: str) -> object:
        return int(text)

    def encode(self, value: object) -> str:
        return str(value)

    def xsd(self) -> etree._Element:
        return _restriction(
            self.type_name, "xs:int", [("minInclusive", str(self.min)), ("maxInclusive", str(self.max))]
        )


@dataclass
class BoolCodec(Codec):
    name: str
    true: str
    false: str

    def __post_init__(self) -> None:
        self.type_name = self.name

    def decode(self, text: str) -> object:
        return text.strip() in (self.true, "1")

    def encode(self, value: object) -> str:
        return self.true if value else self.false

    def xsd(self) -> etree._Element:
        return _restriction(self.name, "xs:string", [("enumeration", self.true), ("enumeration", self.false)])


@dataclass
class CodeListCodec(Codec):
    """A code list: the customer dialect writes the enum's token, SESAM2 its own short code."""

    name: str
    codes: dict[Any, str]  # model value (an enum member, or a plain name) -> code on the wire

    def __post_init__(self) -> None:
        self.type_name = self.name
        self._back = {code: value for value, code in self.codes.items()}

    def decode(self, text: str) -> object:
        try:
            return self._back[text.strip()]
        except KeyError:
            raise DecodeError("code-list", f"'{text}' is not in code list {self.type_name}") from None

    def encode(self, value: object) -> str:
        return self.codes[value]

    def xsd(self) -> etree._Element:
        return _restriction(self.type_name, "xs:string", [("enumeration", c) for c in self.codes.values()])


@dataclass
class DateCodec(Codec):
    compact: bool  # SESAM2: YYYYMMDD; customer: YYYY-MM-DD

    def __post_init__(self) -> None:
        self.type_name = "Date"

    def decode(self, text: str) -> object:
        try:
            if self.compact:
                return datetime.strptime(text.strip(), "%Y%m%d").date()
            return date.fromisoformat(text.strip())
        except ValueError:
            raise DecodeError("date", f"'{text}' is not a real calendar date") from None

    def encode(self, value: object) -> str:
        assert isinstance(value, date)
        return value.strftime("%Y%m%d") if self.compact else value.isoformat()

    def xsd(self) -> etree._Element:
        if self.compact:
            return _restriction("Date", "xs:string", [("pattern", r"\d{8}")], "YYYYMMDD")
        return _restriction("Date", "xs:date", [("pattern", r"\d{4}-\d{2}-\d{2}")], "YYYY-MM-DD, no time zone")


@dataclass
class DateTimeCodec(Codec):
    compact: bool  # SESAM2: YYYYMMDDHHMMSS Swedish local time; customer: ISO 8601 with an offset

    def __post_init__(self) -> None:
        self.type_name = "DateTime"

    def decode(self, text: str) -> object:
        try:
            if not self.compact:
                return datetime.fromisoformat(text.strip())
            naive = datetime.strptime(text.strip(), "%Y%m%d%H%M%S")
        except ValueError:
            raise DecodeError("date-time", f"'{text}' is not a real date and time") from None
        local = naive.replace(tzinfo=STOCKHOLM)
        if local.astimezone(UTC).astimezone(STOCKHOLM).replace(tzinfo=None) != naive:
            raise DecodeError("date-time", f"'{text}' does not exist in Swedish local time (the clocks skip it)")
        return local

    def encode(self, value: object) -> str:
        assert isinstance(value, datetime)
        if self.compact:
            return value.astimezone(STOCKHOLM).strftime("%Y%m%d%H%M%S")
        return value.isoformat(timespec="seconds")

    def xsd(self) -> etree._Element:
        if self.compact:
            return _restriction("DateTime", "xs:string", [("pattern", r"\d{14}")], "YYYYMMDDHHMMSS, Swedish local time")
        pattern = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+\-]\d{2}:\d{2})"
        return _restriction("DateTime", "xs:dateTime", [("pattern", pattern)], "ISO 8601 with offset, whole seconds")


@dataclass
class MonthCodec(Codec):
    compact: bool  # SESAM2: YYYYMM; customer: YYYY-MM

    def __post_init__(self) -> None:
        self.type_name = "Month"

    def decode(self, text: str) -> object:
        try:
            return datetime.strptime(text.strip(), "%Y%m" if self.compact else "%Y-%m").date()
        except ValueError:
            raise DecodeError("month", f"'{text}' is not a calendar month") from None

    def encode(self, value: object) -> str:
        assert isinstance(value, date)
        return value.strftime("%Y%m" if self.compact else "%Y-%m")

    def xsd(self) -> etree._Element:
        pattern = r"\d{4}(0[1-9]|1[0-2])" if self.compact else r"\d{4}-(0[1-9]|1[0-2])"
        return _restriction("Month", "xs:string", [("pattern", pattern)])


@dataclass
class AmountCodec(Codec):
    in_ore: bool  # SESAM2: whole öre; customer: kronor with two decimals

    def __post_init__(self) -> None:
        self.type_name = "Amount"

    def decode(self, text: str) -> object:
        try:
            if self.in_ore:
                return (Decimal(int(text)) / 100).quantize(CENT)
            return Decimal(text.strip()).quantize(CENT)
        except (ValueError, InvalidOperation):
            raise DecodeError("amount", f"'{text}' is not an amount") from None

    def encode(self, value: object) -> str:
        assert isinstance(value, Decimal)
        if self.in_ore:
            return str(int((value * 100).to_integral_value()))
        return str(value.quantize(CENT))

    def xsd(self) -> etree._Element:
        if self.in_ore:
            return _restriction("Amount", "xs:long", [], "Whole öre (1 SEK = 100)")
        return _restriction(
            "Amount", "xs:decimal", [("totalDigits", "14"), ("fractionDigits", "2")], "SEK, two decimals"
        )
