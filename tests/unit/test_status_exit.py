"""`hmc-broker status` as a check: its exit status says whether every partner consumes."""

from __future__ import annotations

import pytest

from broker.status import PartnerStatus, Status


def partner(level: str) -> PartnerStatus:
    return PartnerStatus("sesam2", "sesam2.in", None if level == "unknown" else 0, None, 0.0, level, 0.0)


@pytest.mark.parametrize(
    ("levels", "status"),
    [
        (["up", "up"], 0),
        (["up", "down"], 1),
        (["warning"], 1),
        (["reserve-routine", "up"], 1),
        (["unknown", "unknown"], 3),  # RabbitMQ could not be asked
        (["unknown", "up"], 0),  # a queue not declared yet is not a partner down
    ],
)
def test_the_exit_status_follows_the_partners(levels: list[str], status: int) -> None:
    report = Status(last_hour=[], backlog={}, partners=[partner(level) for level in levels])
    assert report.exit_status == status
    assert report.as_dict()["exit_status"] == status
