"""The test tree's own rule: its folders are not packages, so pytest imports each test module by its file name,
and two modules of one name in different folders stop the whole run at collection ("import file mismatch"),
which a run of one folder never shows."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_name_of_its_own() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
