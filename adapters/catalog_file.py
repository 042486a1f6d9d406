"""Load an article catalog from a CSV or JSON export (one article per row/object, the columns below).

Columns: article_number, supplier_article_number, supplier_gln, name, iso9999, article_type, price,
status, agreement_reference, image_url, manual_url. Every value is checked as in a message; a bad row
is refused with its row number, so a region's export errs loudly at start, not silently per order.
"""

from __future__ import annotations

import csv
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from broker.catalog import Catalog
from broker.contract import identifiers
from broker.model import messages as m
from broker.model.codes import ArticleStatus, ArticleType
from broker.model.types import IdKind

DEMO_CATALOG = Path(__file__).with_name("data") / "demo-catalog.csv"


class CatalogError(ValueError):
    pass


def load_catalog(path: Path) -> Catalog:
    text = path.read_text(encoding="utf-8-sig")  # Excel writes a BOM
    rows: list[dict[str, Any]] = (
        json.loads(text) if path.suffix.lower() == ".json" else list(csv.DictReader(text.splitlines()))
    )
    return Catalog.of(_article(row, i, path) for i, row in enumerate(rows, start=2 if path.suffix != ".json" else 1))


def _article(row: dict[str, Any], number: int, path: Path) -> m.Article:
    def text(key: str) -> str | None:
        value = str(row.get(key) or "").strip()
        return value or None

    try:
        return m.Article(
            article_number=identifiers.check(IdKind.ARTICLE_NUMBER, text("article_number") or ""),
            supplier_article_number=text("supplier_article_number") or "",
            supplier_gln=identifiers.check(IdKind.GLN, text("supplier_gln") or ""),
            name=text("name") or "",
            iso9999=identifiers.check(IdKind.ISO9999, text("iso9999") or ""),
            article_type=ArticleType(text("article_type") or ""),
            price=Decimal(text("price") or "").quantize(Decimal("0.01")),
            status=ArticleStatus(text("status") or ArticleStatus.ACTIVE.value),
            agreement_reference=text("agreement_reference"),
            image_url=text("image_url"),
            manual_url=text("manual_url"),
        )
    except (identifiers.IdentifierError, ValueError, InvalidOperation) as e:
        raise CatalogError(f"{path}: row {number}: {e}") from None
