"""README.md's configuration table is generated from broker/config.py and must not drift from it."""

from __future__ import annotations

from dataclasses import fields

from broker import settings_table
from broker.config import Settings, variables


def test_the_readme_table_is_the_generated_one() -> None:
    readme = settings_table.README.read_text(encoding="utf-8")
    assert settings_table.in_readme(readme) == settings_table.markdown(), (
        "README.md's configuration table is out of date: run `python -m broker.settings_table --write`"
    )


def test_every_setting_has_a_row_with_a_meaning() -> None:
    rows = {v.name: v for v in variables()}
    for f in fields(Settings):
        name = f.metadata["variable"] or f"HMC_{f.name.upper()}"
        assert name in rows and rows[name].meaning, f"{f.name} has no row in the table"
    assert len(rows) == len(variables()), "a variable is listed twice"


def test_writing_replaces_only_the_table() -> None:
    text = f"before\n{settings_table.BEGIN}\n| stale |\n{settings_table.END}\nafter\n"
    written = settings_table.written(text)
    assert written.startswith("before\n") and written.endswith(f"{settings_table.END}\nafter\n")
    assert settings_table.in_readme(written) == settings_table.markdown()
