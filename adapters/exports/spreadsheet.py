"""Spreadsheets that Excel opens correctly: xlsx (openpyxl) and CSV, one set of conventions for every export.

- xlsx: one sheet per table; numbers are numbers (amounts with two decimals, written from Decimal, so
  the file holds the exact value), dates are dates (yyyy-mm-dd), a bold header row, frozen, with filters.
- CSV: UTF-8 with a BOM (Excel otherwise reads å, ä, ö as two characters), semicolons (Excel's list
  separator where the decimal mark is a comma, as in Sweden), decimal comma without thousands
  separators, ISO 8601 dates. A CSV holds the tables one after another, a blank line and the table's
  title between them.

Both are written to a temporary file beside the target and renamed into place: a failed export leaves
no half-written file. The SHA-256 of what was written goes into the audit row.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

Cell = str | int | Decimal | date | datetime | None
Format = Literal["xlsx", "csv"]
FORMATS: tuple[Format, ...] = ("xlsx", "csv")
_AMOUNT = "#,##0.00"
_DATE = "yyyy-mm-dd"
_DATETIME = "yyyy-mm-dd hh:mm"


@dataclass(frozen=True)
class Table:
    """A titled table: the title names the xlsx sheet (at most 31 characters) and heads its CSV section."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]


@dataclass(frozen=True)
class Written:
    path: Path
    rows: int  # data rows over all tables
    sha256: str


def render(tables: Sequence[Table], fmt: Format) -> bytes:
    return xlsx_bytes(tables) if fmt == "xlsx" else csv_bytes(tables)


def write(path: Path, tables: Sequence[Table], fmt: Format) -> Written:
    return place(path, render(tables, fmt), sum(len(t.rows) for t in tables))


def place(path: Path, data: bytes, rows: int) -> Written:
    """Write `data` to `path` whole or not at all (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Written(path, rows, sha256(data))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- xlsx


def xlsx_bytes(tables: Sequence[Table]) -> bytes:
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for table in tables:
        sheet = book.create_sheet(title=table.title[:31])
        sheet.append(list(table.columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        widths = [len(c) for c in table.columns]
        for row in table.rows:
            sheet.append([_xlsx_value(v) for v in row])
            for i, (cell, value) in enumerate(zip(sheet[sheet.max_row], row, strict=True)):
                style = _number_format(value)
                if style:
                    cell.number_format = style
                widths[i] = max(widths[i], len(_text(value)))
        for i, width in enumerate(widths, start=1):
            sheet.column_dimensions[get_column_letter(i)].width = min(max(width + 2, 8), 60)
        sheet.freeze_panes = "A2"
        if table.rows:
            sheet.auto_filter.ref = sheet.dimensions
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx_value(value: Cell) -> Cell:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)  # Excel has no time zones: times are written as UTC
    return value


def _number_format(value: Cell) -> str | None:
    if isinstance(value, Decimal):
        return _AMOUNT
    if isinstance(value, datetime):
        return _DATETIME
    if isinstance(value, date):
        return _DATE
    return None


# ---------------------------------------------------------------- CSV


def csv_bytes(tables: Sequence[Table]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    for i, table in enumerate(tables):
        if i:
            writer.writerow([])
            writer.writerow([table.title])
        writer.writerow(table.columns)
        for row in table.rows:
            writer.writerow([_text(v) for v in row])
    return out.getvalue().encode("utf-8-sig")


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_comma(value)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def decimal_comma(value: Decimal) -> str:
    """1234.5 -> '1234,5': the exact value, a decimal comma, no exponent and no thousands separator."""
    return format(value, "f").replace(".", ",")
