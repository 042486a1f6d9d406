"""The article catalog: which articles may be ordered. Modelled on what Hjälpmedelstjänsten publishes.

The catalog lives in the store (broker/store/articles.py): imported from a region's export with `hmc-broker
catalog import` (adapters/catalog_file.py reads it) and kept current by SESAM2's ArticleRegisterUpdate. Each
worker caches it and reloads it when the store's version moved (LiveCatalog). HMC_CATALOG, a file read at
start, lies under the store's articles; with neither the broker checks no articles.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from broker.contract.rules import Breach
from broker.model import messages as m
from broker.model.codes import ArticleStatus

# The types checked against the catalog: a batch without any of them does not even read the version.
CHECKED: tuple[type[m.Message], ...] = (m.CustomerOrder, m.BufferWithdrawal, m.WorkOrder)


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


@dataclass(frozen=True)
class Diff:
    """What importing an export would change in the register (article numbers, sorted)."""

    added: list[str]
    changed: list[str]  # any field differs (withdrawn ones are also listed in `withdrawn`)
    withdrawn: list[str]  # active in the register, withdrawn in the export
    missing: list[str]  # in the register, not in the export (an import leaves them as they are)

    @property
    def empty(self) -> bool:
        return not (self.added or self.changed or self.missing)


def diff(register: Iterable[m.Article], export: Iterable[m.Article]) -> Diff:
    now = {a.article_number: a for a in register}
    new = {a.article_number: a for a in export}
    changed = sorted(n for n in new.keys() & now.keys() if new[n] != now[n])
    withdrawn = sorted(
        n for n in changed if new[n].status is ArticleStatus.WITHDRAWN and now[n].status is ArticleStatus.ACTIVE
    )
    return Diff(sorted(new.keys() - now.keys()), changed, withdrawn, sorted(now.keys() - new.keys()))


class LiveCatalog:
    """The store's register as this process last read it, by version: reloaded whole when the version moved
    (an import or an ArticleRegisterUpdate committed), so validation costs no query per line or message.

    `base` (HMC_CATALOG's file, if any) lies under the store's articles: an update that reaches a store with
    no import yet changes the file's articles instead of leaving only its own few."""

    def __init__(self, base: Catalog | None = None) -> None:
        self._base = base
        self._cached: tuple[int, Catalog | None] = (-1, base)  # one tuple: read and replaced atomically

    def current(self, version: int, load: Callable[[], Iterable[m.Article]]) -> Catalog | None:
        """The catalog of `version` (0: the store has no register, the base alone), loaded when new."""
        cached_version, catalog = self._cached
        if version != cached_version:
            stored = list(load()) if version else []
            base = list(self._base.articles.values()) if self._base else []
            catalog = Catalog.of([*base, *stored]) if base or stored else None
            self._cached = (version, catalog)
        return catalog
