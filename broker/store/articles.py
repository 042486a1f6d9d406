"""The article register's repository: read whole (workers cache it by version), changed by upsert.

Every change raises the register's version in the same transaction, so a worker knows with one primary-key
read per batch whether its cached copy is still the committed register.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from broker.model import messages as m
from broker.model.codes import ArticleStatus, ArticleType
from broker.store import driver, upsert
from broker.store.tables import ArticleRow, RegisterVersionRow

REGISTER = "articles"
_VERSION = select(RegisterVersionRow.version).where(RegisterVersionRow.name == REGISTER)


def version(session: Session) -> int:
    """The committed register's version; 0 when nothing was ever imported (no register: nothing checked).
    Read for every batch that has an order to check: through the driver (driver.py)."""
    found = driver.fetch(session, driver.compiled(session, _VERSION, lambda: _VERSION), {})
    return found[0][0] if found else 0


def all_articles(session: Session) -> list[m.Article]:
    return [_article(row.article) for row in session.scalars(select(ArticleRow).order_by(ArticleRow.article_number))]


def put(session: Session, articles: Iterable[m.Article], by: str, at: datetime | None = None) -> int:
    """Insert or replace these articles and raise the version; how many were written."""
    stamp = at or datetime.now(UTC)
    rows = [
        {
            "article_number": a.article_number,
            "status": a.status.value,
            "article": _data(a),
            "updated_at": stamp,
            "updated_by": by[:100],
        }
        for a in articles
    ]
    if not rows:
        return 0
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        statement = upsert.insert(session, ArticleRow.__table__).values(chunk)
        excluded = statement.excluded
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["article_number"],
                set_={c: excluded[c] for c in ("status", "article", "updated_at", "updated_by")},
            )
        )
    statement = upsert.insert(session, RegisterVersionRow.__table__).values(name=REGISTER, version=1, updated_at=stamp)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"],
            set_={"version": RegisterVersionRow.__table__.c.version + 1, "updated_at": stamp},
        )
    )
    return len(rows)


def _data(a: m.Article) -> dict[str, Any]:
    return {
        "article_number": a.article_number,
        "supplier_article_number": a.supplier_article_number,
        "supplier_gln": a.supplier_gln,
        "name": a.name,
        "iso9999": a.iso9999,
        "article_type": a.article_type.value,
        "price": str(a.price),
        "status": a.status.value,
        "agreement_reference": a.agreement_reference,
        "image_url": a.image_url,
        "manual_url": a.manual_url,
    }


def _article(data: dict[str, Any]) -> m.Article:
    return m.Article(
        **{
            **data,
            "article_type": ArticleType(data["article_type"]),
            "price": Decimal(data["price"]),
            "status": ArticleStatus(data["status"]),
        }
    )


class Articles:
    """The register on a unit of work's session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def version(self) -> int:
        return version(self._session)

    def all(self) -> list[m.Article]:
        return all_articles(self._session)

    def put(self, articles: Iterable[m.Article], by: str) -> int:
        return put(self._session, articles, by)
