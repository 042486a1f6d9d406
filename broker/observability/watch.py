"""The outage watch: is SESAM2 (and each customer system) consuming what the broker sends it?

A partner is *down* when nobody consumes its queue, or when its oldest waiting message is older than
`stale_after_s`. The broker keeps accepting and storing messages meanwhile (store and forward); the watch
warns after `warn_after_s` and raises the reserve-routine flag after `reserve_after_s` (the region's
4-hour paper routine), as a metric, an event on hmc.events and a log line to alert on; unless an operator
recorded a forecast (`hmc-broker forecast`) that has not passed: the routine is "four hours and still no
forecast", so a forecast holds it back until its time. When the partner
consumes again the flags clear and the queue drains in order.

The outage length survives a worker restart: with no consumer it is at least the age of the oldest
waiting message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

import structlog

from broker.observability import metrics

log = structlog.get_logger(__name__)


class Level(StrEnum):
    UP = "up"
    DOWN = "down"  # not consuming, within the warning time
    WARNING = "warning"
    RESERVE_ROUTINE = "reserve-routine"


@dataclass(frozen=True)
class QueueState:
    messages: int
    consumers: int
    oldest_age_s: float  # 0 when empty


@dataclass(frozen=True)
class Thresholds:
    stale_after_s: float = 300.0
    warn_after_s: float = 900.0
    reserve_after_s: float = 4 * 3600.0


@dataclass(frozen=True)
class Transition:
    partner: str
    level: Level
    previous: Level
    outage_s: float


@dataclass
class Watch:
    thresholds: Thresholds = field(default_factory=Thresholds)
    clock: Callable[[], float] = field(default=lambda: 0.0)
    _down_since: dict[str, float] = field(default_factory=dict)
    _level: dict[str, Level] = field(default_factory=dict)

    def observe(
        self, partner: str, queue: str, state: QueueState, forecast_back_by: float | None = None
    ) -> Transition | None:
        """Record one look at a partner's queue; the change of level, if any. `forecast_back_by` (epoch
        seconds): when an operator's forecast says the partner is back; before then no reserve routine."""
        now = self.clock()
        metrics.QUEUE_DEPTH.labels(queue).set(state.messages)
        metrics.QUEUE_CONSUMERS.labels(queue).set(state.consumers)
        metrics.OLDEST_AGE.labels(queue).set(state.oldest_age_s)
        down = state.consumers == 0 or state.oldest_age_s > self.thresholds.stale_after_s
        if down:
            since = self._down_since.setdefault(partner, now)
            outage = max(now - since, state.oldest_age_s if state.consumers == 0 else 0.0)
        else:
            self._down_since.pop(partner, None)
            outage = 0.0
        level = self._level_for(down, outage, forecast_back_by is not None and now < forecast_back_by)
        metrics.PARTNER_UP.labels(partner).set(0 if down else 1)
        metrics.OUTAGE_SECONDS.labels(partner).set(outage)
        metrics.RESERVE_ROUTINE.labels(partner).set(1 if level is Level.RESERVE_ROUTINE else 0)
        previous = self._level.get(partner, Level.UP)
        self._level[partner] = level
        if level is previous:
            return None
        transition = Transition(partner, level, previous, outage)
        _log(transition, queue, state)
        return transition

    def level(self, partner: str) -> Level:
        return self._level.get(partner, Level.UP)

    def _level_for(self, down: bool, outage: float, forecast: bool = False) -> Level:
        if not down:
            return Level.UP
        if outage >= self.thresholds.reserve_after_s and not forecast:
            return Level.RESERVE_ROUTINE
        if outage >= self.thresholds.warn_after_s:
            return Level.WARNING
        return Level.DOWN


def _log(t: Transition, queue: str, state: QueueState) -> None:
    fields = {"partner": t.partner, "queue": queue, "outage_s": round(t.outage_s), "waiting": state.messages}
    if t.level is Level.RESERVE_ROUTINE:
        log.critical("reserve routine: partner unavailable past the threshold, start the paper routine", **fields)
    elif t.level is Level.WARNING:
        log.warning("partner not consuming", **fields)
    elif t.level is Level.DOWN:
        log.info("partner stopped consuming; messages are stored and forwarded later", **fields)
    else:
        log.warning("partner consuming again; backlog drains in order", previous=t.previous.value, **fields)
