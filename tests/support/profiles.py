"""Hypothesis's two profiles, chosen by HYPOTHESIS_PROFILE (tests/conftest.py loads one before any test
module is imported):

- `dev` (the default): at most 10 examples a test, for the inner loop;
- `ci` (.ci/run): Hypothesis's own defaults (100 examples), as every run had them before the profiles.

A test that names its own count writes `max_examples=at_most(n)`: n under `ci`, never more than the
profile's count under `dev`.
"""

from __future__ import annotations

import os

from hypothesis import settings

DEV_EXAMPLES = 10


def load() -> str:
    """Register both profiles and load the one HYPOTHESIS_PROFILE names ("dev" when unset); its name."""
    settings.register_profile("ci", settings())
    settings.register_profile("dev", settings(max_examples=DEV_EXAMPLES))
    name = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    settings.load_profile(name)
    return name


def at_most(n: int) -> int:
    """A test's own number of examples, capped by the loaded profile's (10 under dev, 100 under ci)."""
    return min(n, settings.default.max_examples)
