"""Command-line tools the tests run that are not Python packages: the AsyncAPI CLI (@asyncapi/cli from npm),
Prometheus's promtool (Debian's prometheus package) and valgrind (the bench's instruction counts).

.ci/run installs the AsyncAPI CLI into .tools/asyncapi (project-local, not committed) and promtool with apt-get.
A missing tool skips the test with the command that installs it; with HMC_REQUIRE_TOOLS=1 or
HMC_REQUIRE_SERVICES=1 (CI) it fails the test instead. The AsyncAPI CLI runs offline: its analytics are disabled,
its update check skipped, and node is preloaded with no_network.cjs so that any connection it tries fails and
shows in its output.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI = ROOT / ".tools/asyncapi/node_modules/.bin/asyncapi"
INSTALL_ASYNCAPI = "bash .ci/run (or: npm install --prefix .tools/asyncapi @asyncapi/cli)"
NO_NETWORK = Path(__file__).with_name("no_network.cjs")
NETWORK_REFUSED = "HMC_NO_NETWORK"


def require_asyncapi() -> Path:
    if ASYNCAPI.is_file():
        return ASYNCAPI
    _missing(f"the AsyncAPI CLI is not installed at {ASYNCAPI.relative_to(ROOT)}: install it with {INSTALL_ASYNCAPI}")


def require_promtool() -> Path:
    found = shutil.which("promtool")
    if found:
        return Path(found)
    _missing("promtool is not installed: install it with `apt-get install prometheus` (or bash .ci/run)")


def require_valgrind() -> Path:
    found = shutil.which("valgrind")
    if found:
        return Path(found)
    _missing("valgrind is not installed: install it with `apt-get install valgrind` (or bash .ci/run)")


def _missing(reason: str) -> NoReturn:
    if "1" in (os.environ.get("HMC_REQUIRE_TOOLS"), os.environ.get("HMC_REQUIRE_SERVICES")):
        pytest.fail(reason)
    pytest.skip(reason)


def offline_env(home: Path) -> dict[str, str]:
    """The environment the AsyncAPI CLI runs in: its own home, analytics off, no update check, no network."""
    analytics = home / "asyncapi-analytics.json"
    analytics.write_text(json.dumps({"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "test"}))
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "CI": "true",  # the CLI records no metrics in CI either
        "ASYNCAPI_METRICS_CONFIG_PATH": str(analytics),
        "ASYNCAPI_SKIP_NEW_VERSION_CHECK": "true",
        "SUPPRESS_NO_CONFIG_WARNING": "1",
        "DO_NOT_TRACK": "1",
        "NODE_OPTIONS": f"--require {NO_NETWORK}",
    }
