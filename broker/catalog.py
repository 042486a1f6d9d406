"""The article catalog: which articles may be ordered. Modelled on what Hjälpmedelstjänsten publishes.

A region loads its own export (adapters/catalog_file.py); without a catalog the broker checks no articles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from broker.contract.rules import Breach
from broker.model import messages as m
from broker.model.codes import ArticleStatus


@dataclass(frozen=True)
class Catalog:
    articles: dict[str, m.Article]

    @classmethod
    def of(cls, articles: Iterable[m.Article]) -> Catalog:
        return cls({a.article_number: a for a in articles})

    def check(self, message: m.Message) -> list[Breach]:
        return list(self._breaches(message))

    def _breaches(self, message: m.Message) -> Iterator[Breach]:
        if isinstance(message, m.CustomerOrder):
            for i, line in enumerate(message.lines, start=1):
                yield from self._orderable(line.article_number, f"lines[{i}].article_number")
        elif isinstance(message, m.BufferWithdrawal):
            for i, device in enumerate(message.lines, start=1):
                yield from self._orderable(device.article_number, f"lines[{i}].article_number")
        elif isinstance(message, m.WorkOrder) and message.article_number not in self.articles:
            # A work order may concern a device of a withdrawn article, but never one HMC does not know.
            yield Breach(
                "catalog.unknown-article", "article_number", f"article {message.article_number} is not in the catalog"
            )

    def _orderable(self, number: str, field: str) -> Iterator[Breach]:
        article = self.articles.get(number)
        if article is None:
            yield Breach("catalog.unknown-article", field, f"article {number} is not in the catalog")
        elif article.status is ArticleStatus.WITHDRAWN:
            yield Breach("catalog.withdrawn-article", field, f"article {number} is withdrawn and cannot be ordered")
