"""What a bench run measured, its targets, and the JSON object `--json` prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from adapters.bench.wire import Latencies, Progress


@dataclass(frozen=True)
class Plan:
    """How much of everything; `QUICK` finishes in under a minute on a 2-core machine."""

    messages: int = 20_000  # orders through the broker per throughput run (each path, each worker count)
    baseline_messages: int = 20_000  # through the raw pass-through (fast: more give a steadier figure)
    naive_messages: int = 3_000  # through the hand-written loop (slow: fewer suffice for a rate)
    latency_messages: int = 3_000  # at the fixed offered rate
    saturation_messages: int = 5_000  # with a full window in flight
    backlog: int = 50_000
    workers: tuple[int, ...] = (1, 2, 4)
    rate: float = 200.0  # msg/s offered in the fixed-rate latency run
    trickle_rate: float = 50.0  # msg/s of the trickle: what a message waits when the worker is mostly idle
    trickle_messages: int = 1_000  # at the trickle rate
    batch_size: int = 100  # HMC_BATCH_SIZE of the workers
    batch_wait_ms: int = 20  # HMC_BATCH_WAIT_MS of the workers
    window: int = 500  # unconfirmed publishes (and prefetch) of the raw pass-through
    soak: int = 0  # > 0: this many more orders through one worker, RSS sampled along the way

    @property
    def saturation_window(self) -> int:
        """Messages in flight at saturation: the worker's prefetch (two batches), so batches fill."""
        return self.batch_size * 2


QUICK = Plan(
    messages=400,
    baseline_messages=5_000,
    naive_messages=300,
    latency_messages=300,
    trickle_messages=150,
    saturation_messages=300,
    backlog=600,
    workers=(1, 2),
)

# Shown with the figures, never gated: (JSON key, description, comparison, threshold).
TARGETS: tuple[tuple[str, str, str, float], ...] = (
    ("ratio", "broker / raw pass-through, one worker", ">=", 0.5),
    ("vs_naive", "broker / naive hand-written loop", ">=", 3.0),
    ("p99_ms", "p99 latency at the fixed rate (ms)", "<=", 10.0),
    ("trickle_p50_ms", "p50 latency at the trickle rate (ms)", "<=", 10.0),
    ("drain_50k_s", "50,000-order backlog drained (s; measured with --backlog 50000 or more)", "<=", 60.0),
    ("rss_growth_mb", "RSS growth over the backlog drain after warm-up (MB)", "<=", 10.0),
    ("stage_ratio", "stage cost (read + translate) / floor (lxml parse + XSD)", "<=", 3.0),
)


@dataclass
class RssSeries:
    """(messages processed, RSS in MB) while a worker drains: flat means no leak."""

    samples: list[tuple[int, float]] = field(default_factory=list)

    def growth(self, after_fraction: float = 0.2) -> float | None:
        """RSS growth from when `after_fraction` of the run was done to the end (warm-up excluded)."""
        if len(self.samples) < 2:
            return None
        total = self.samples[-1][0]
        start = next((rss for done, rss in self.samples if done >= total * after_fraction), self.samples[0][1])
        return self.samples[-1][1] - start


@dataclass
class Results:
    mode: str  # "services" (RabbitMQ + PostgreSQL) or "embedded" (memory:// + SQLite, one process)
    plan: Plan
    partitions: int
    baseline_msgs_per_s: float | None = None
    naive_msgs_per_s: float | None = None
    pipeline_msgs_per_s: float = 0.0  # customer -> SESAM2, one worker
    return_msgs_per_s: float = 0.0  # SESAM2 -> customer, one worker
    fixed: Latencies | None = None
    trickle: Latencies | None = None  # at plan.trickle_rate
    saturation: Latencies | None = None
    drain_s: float = 0.0
    drain_rss: RssSeries = field(default_factory=RssSeries)
    soak_rss: RssSeries = field(default_factory=RssSeries)
    rss_mb: float = 0.0  # peak RSS (VmHWM) of a worker
    workers: dict[int, float] = field(default_factory=dict)  # worker count -> msg/s customer -> SESAM2
    store: dict[str, int] = field(default_factory=dict)  # messages in the store by status, at the end
    stage_us: dict[str, float] = field(default_factory=dict)  # CPU per order of the pure stages (stages.py)
    worker_cpu_us: float | None = None  # the worker process's own CPU per order, customer -> SESAM2, one worker
    stage_floor_us: float | None = None  # lxml's hardened parse + XSD of the same orders, timed beside them
    elapsed_s: float = 0.0
    run: str = ""  # the run's id: its queues are named bench<run>.*, its database hmc_bench_<run>
    target: str = ""  # where it ran (URLs without passwords)
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        return _div(self.pipeline_msgs_per_s, self.baseline_msgs_per_s)

    @property
    def vs_naive(self) -> float | None:
        return _div(self.pipeline_msgs_per_s, self.naive_msgs_per_s)

    @property
    def stage_ratio(self) -> float | None:
        """(read + translate) / floor: how far the pure stages are from what lxml alone costs."""
        return _div(sum(self.stage_us.values()), self.stage_floor_us) if self.stage_us else None

    @property
    def cpu_bound_msgs_per_s(self) -> float | None:
        return 1e6 / sum(self.stage_us.values()) if self.stage_us else None

    def key_figures(self) -> dict[str, float | None]:
        fixed, trickle, sat = self.fixed, self.trickle, self.saturation
        return {
            "baseline_msgs_per_s": self.baseline_msgs_per_s,
            "naive_msgs_per_s": self.naive_msgs_per_s,
            "pipeline_msgs_per_s": self.pipeline_msgs_per_s,
            "return_msgs_per_s": self.return_msgs_per_s,
            "ratio": self.ratio,
            "vs_naive": self.vs_naive,
            "p50_ms": fixed.percentile(50) if fixed else None,
            "p95_ms": fixed.percentile(95) if fixed else None,
            "p99_ms": fixed.percentile(99) if fixed else None,
            "trickle_p50_ms": trickle.percentile(50) if trickle else None,
            "trickle_p99_ms": trickle.percentile(99) if trickle else None,
            "saturation_msgs_per_s": sat.msgs_per_s if sat else None,
            "saturation_p50_ms": sat.percentile(50) if sat else None,
            "saturation_p95_ms": sat.percentile(95) if sat else None,
            "saturation_p99_ms": sat.percentile(99) if sat else None,
            "drain_s": self.drain_s,
            # Only a backlog of 50,000 or more answers the target; a smaller one is not scaled up.
            "drain_50k_s": self.drain_s * 50_000 / self.plan.backlog if self.plan.backlog >= 50_000 else None,
            "worker_cpu_us": self.worker_cpu_us,
            "rss_mb": self.rss_mb,
            "rss_growth_mb": self.drain_rss.growth(),
            "stage_ratio": self.stage_ratio,
        }

    def targets(self) -> list[dict[str, Any]]:
        figures = self.key_figures()
        out = []
        for key, what, op, threshold in TARGETS:
            value = figures[key]
            met = None if value is None else (value >= threshold if op == ">=" else value <= threshold)
            out.append({"key": key, "what": what, "target": f"{op} {threshold:g}", "value": value, "met": met})
        return out

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            **self.key_figures(),
            "workers": {str(k): v for k, v in sorted(self.workers.items())},
            "mode": self.mode,
            "partitions": self.partitions,
            "rate": plan.rate,
            "messages": plan.messages,
            "baseline_messages": plan.baseline_messages if self.baseline_msgs_per_s is not None else None,
            "naive_messages": plan.naive_messages if self.naive_msgs_per_s is not None else None,
            "latency_messages": plan.latency_messages,
            "trickle_rate": plan.trickle_rate,
            "trickle_messages": plan.trickle_messages,
            "saturation_messages": plan.saturation_messages,
            "saturation_window": plan.saturation_window,
            "backlog": plan.backlog,
            "batch_size": plan.batch_size,
            "batch_wait_ms": plan.batch_wait_ms,
            "window": plan.window,
            "drain_rss": [list(s) for s in self.drain_rss.samples],
            "soak": plan.soak,
            "soak_rss": [list(s) for s in self.soak_rss.samples],
            "soak_rss_growth_mb": self.soak_rss.growth(),
            "store": self.store,
            "stage_us": self.stage_us,
            "stage_floor_us": self.stage_floor_us,
            "cpu_bound_msgs_per_s": self.cpu_bound_msgs_per_s,
            "targets": self.targets(),
            "elapsed_s": self.elapsed_s,
            "run": self.run,
            "target": self.target,
            "notes": self.notes,
        }


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


class Reporter(Protocol):
    """Where progress goes (a progress bar, or nothing)."""

    def phase(self, name: str, total: int) -> Progress: ...


class Silent:
    def phase(self, name: str, total: int) -> Progress:
        return lambda _done: None
