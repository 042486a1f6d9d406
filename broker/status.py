"""`hmc-broker status`: one screen for operations, from the store and RabbitMQ, without a running worker."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from broker.config import Settings
from broker.observability.watch import Level, QueueState, Watch
from broker.store import forecasts
from broker.store.queries import TypeCount, backlog, last_hour, oldest_waiting_age

QueueCounts = Callable[[list[str]], dict[str, tuple[int, int] | None]]


@dataclass(frozen=True)
class PartnerStatus:
    partner: str
    queue: str
    messages: int | None  # None: queue missing or RabbitMQ unreachable
    consumers: int | None
    oldest_age_s: float
    level: str
    outage_s: float


@dataclass(frozen=True)
class Status:
    last_hour: list[TypeCount]
    backlog: dict[str, int]
    partners: list[PartnerStatus]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "exit_status": self.exit_status}

    @property
    def exit_status(self) -> int:
        """0 every partner consumes; 1 one does not; 3 RabbitMQ could not be asked (every partner unknown)."""
        if self.partners and all(p.level == "unknown" for p in self.partners):
            return 3
        return 0 if all(p.level in ("up", "unknown") for p in self.partners) else 1


def gather(
    settings: Settings, sessions: sessionmaker[Session], partners: dict[str, str], counts: QueueCounts
) -> Status:
    found = counts(list(partners.values()))
    watch = Watch(settings.thresholds, clock=lambda: 0.0)
    out = []
    with sessions() as session:
        types = last_hour(session)
        waiting = backlog(session)
        forecast = {p: t.timestamp() for p, t in forecasts.pending(session, datetime.now(UTC)).items()}
        for partner, queue in partners.items():
            got = found.get(queue)
            if got is None:
                out.append(PartnerStatus(partner, queue, None, None, 0.0, "unknown", 0.0))
                continue
            messages, consumers = got
            age = oldest_waiting_age(session, partner, messages)
            # One look: with no consumer the outage is at least as old as the oldest waiting message.
            watch.observe(partner, queue, QueueState(messages, consumers, age), forecast.get(partner))
            level = watch.level(partner)
            outage = age if level is not Level.UP and consumers == 0 else 0.0
            out.append(PartnerStatus(partner, queue, messages, consumers, age, level.value, outage))
    return Status(types, waiting, out)
