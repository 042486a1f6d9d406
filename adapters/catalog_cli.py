"""`hmc-broker catalog`: the article register in the store: show it, diff an export against it, import one.

The export is read by adapters/catalog_file.py (every value checked as in a message); the register's
repository is broker/store/articles.py. An import raises the register's version, so running workers reload
it with their next batch that has articles to check.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from adapters.catalog_file import CatalogError, load_catalog
from broker.catalog import diff
from broker.config import Settings
from broker.model.messages import Article
from broker.store import Session, articles, sessionmaker

catalog_app = typer.Typer(help="The article register in the store: show it, diff or import an export.")
Export = Annotated[Path, typer.Argument(help="a CSV or JSON export (columns as adapters/catalog_file.py lists)")]
AsJson = Annotated[bool, typer.Option("--json", help="one JSON object on stdout")]


def _store() -> sessionmaker[Session]:
    from broker.bootstrap import store

    return store(Settings.from_env())


def _export(path: Path) -> list[Article]:
    try:
        return list(load_catalog(path).articles.values())
    except (CatalogError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


@catalog_app.command("show")
def show(
    article: Annotated[str | None, typer.Option("--article", "-a", help="one article number")] = None,
    as_json: AsJson = False,
) -> None:
    """The register: its version and its articles (or one)."""
    with _store()() as session:
        version, found = articles.version(session), articles.all_articles(session)
    if article is not None:
        found = [a for a in found if a.article_number == article.upper()]
        if not found:
            typer.echo(f"error: article {article} is not in the register", err=True)
            raise typer.Exit(1)
    if as_json:
        rows = [{**asdict(a), "price": str(a.price)} for a in found]
        typer.echo(json.dumps({"version": version, "articles": rows}, ensure_ascii=False, default=str))
        return
    typer.echo(f"article register, version {version}: {len(found)} article(s)")
    for a in found:
        typer.echo(f"{a.article_number:<20} {a.status.value:<9} {a.iso9999:<8} {a.price:>10} {a.name}")


@catalog_app.command("diff")
def diff_export(export: Export, as_json: AsJson = False) -> None:
    """What importing the export would change: added, changed, withdrawn, and missing from the export."""
    wanted = _export(export)
    with _store()() as session:
        found = diff(articles.all_articles(session), wanted)
    if as_json:
        typer.echo(json.dumps(asdict(found)))
        return
    for name in ("added", "changed", "withdrawn", "missing"):
        numbers = getattr(found, name)
        typer.echo(f"{name}: {len(numbers)}" + (f"  {' '.join(numbers)}" if numbers else ""))


@catalog_app.command("import")
def import_export(
    export: Export,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="show what would change, write nothing")] = False,
    as_json: AsJson = False,
) -> None:
    """Write every article of the export into the register (articles not in it are left as they are)."""
    wanted = _export(export)
    with _store()() as session:
        found = diff(articles.all_articles(session), wanted)
        written = 0
        if not dry_run:
            written = articles.put(session, wanted, by=f"import {export.name}")
            session.commit()
        version = articles.version(session)
    summary = {"written": written, "version": version, "dry_run": dry_run, **asdict(found)}
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        typer.echo(
            f"{'would write' if dry_run else 'wrote'} {len(wanted)} article(s): {len(found.added)} new,"
            f" {len(found.changed)} changed ({len(found.withdrawn)} withdrawn); register version {version}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
