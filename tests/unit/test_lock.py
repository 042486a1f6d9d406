"""requirements.lock, what the Docker image installs with --require-hashes, covers pyproject's runtime
dependencies: every one pinned, at a version its range allows, with hashes. README.md, section "Docker
image", says how to make it again."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PINNED = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)")


def pins(name: str) -> dict[str, str]:
    """Package -> version of a lock, after checking that every pin has at least one sha256 hash."""
    text = (ROOT / name).read_text(encoding="utf-8").replace("\\\n", " ")
    out = {}
    for line in text.splitlines():
        if found := PINNED.match(line):
            assert "--hash=sha256:" in line, f"{name}: {found[1]} has no hash"
            out[canonicalize_name(found[1])] = found[2]
    return out


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    locked = pins("requirements.lock")
    for spec in pyproject["project"]["dependencies"]:
        wanted = Requirement(spec)
        name = canonicalize_name(wanted.name)
        assert name in locked, f"{wanted.name} is not in requirements.lock: make the lock again"
        assert wanted.specifier.contains(locked[name]), f"{name} {locked[name]} is outside {wanted.specifier}"
        for extra in wanted.extras:  # psycopg[binary] brings psycopg-binary
            assert canonicalize_name(f"{wanted.name}-{extra}") in locked, f"{spec}: its extra is not locked"


def test_the_build_lock_pins_the_build_backend_within_its_range() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    locked = pins("requirements-build.lock")
    for spec in pyproject["build-system"]["requires"]:
        wanted = Requirement(spec)
        assert wanted.specifier.contains(locked[canonicalize_name(wanted.name)]), spec


def test_nothing_for_tests_or_development_is_in_the_image() -> None:
    locked = pins("requirements.lock")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = [
        Requirement(s).name for group in ("test", "dev") for s in pyproject["project"]["optional-dependencies"][group]
    ]
    # joserfc: authlib's own dependency (the console's single sign-on) that the tests also use directly.
    wanted_at_run_time = {"hatchling", "joserfc"}
    assert not {canonicalize_name(n) for n in extras if n not in wanted_at_run_time} & locked.keys()
