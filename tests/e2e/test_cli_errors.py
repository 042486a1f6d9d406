"""`hmc-broker` as a user runs it: a failure is one line on stderr and an exit status by kind, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

CONFIGURATION, UNREACHABLE = 2, 3


def hmc(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HMC_")}
    return subprocess.run(
        [sys.executable, "-m", "broker.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "env", "status", "said"),
    [
        (("run",), {"HMC_PARTITION": "4"}, CONFIGURATION, "did you mean HMC_PARTITIONS?"),
        (("status",), {"HMC_BATCH_SIZE": "abc"}, CONFIGURATION, "HMC_BATCH_SIZE: 'abc' is not a whole number"),
        (("topology",), {"HMC_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/"}, UNREACHABLE, "RabbitMQ unreachable"),
        (
            ("db", "upgrade"),
            {"HMC_DB_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nothing"},
            UNREACHABLE,
            "store unreachable",
        ),
    ],
)
def test_a_failure_is_one_line_and_an_exit_status_by_kind(
    args: tuple[str, ...], env: dict[str, str], status: int, said: str
) -> None:
    done = hmc(*args, **env)
    assert done.returncode == status, done.stderr
    assert said in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


def test_debug_shows_the_traceback() -> None:
    done = hmc("--debug", "status", HMC_BATCH_SIZE="abc")
    assert done.returncode != 0 and "Traceback" in done.stderr and "ConfigurationError" in done.stderr
