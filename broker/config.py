"""Settings, read once at start from the environment (HMC_*) and an optional TOML file (HMC_CONFIG).

The environment wins over the file. Secrets (passwords in URLs, HMC_PII_KEY) come only from the
environment; the file holds what may be committed: customers, tuning, names.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from re import Pattern
from typing import Any, Literal
from urllib.parse import urlsplit

from broker.model.types import IdKind
from broker.observability.watch import Thresholds
from broker.validation import identifiers
from broker.validation.safe_xml import XmlLimits

QueueType = Literal["classic", "quorum"]


@dataclass(frozen=True)
class Customer:
    """A customer system: the customer numbers it owns, the AMQP user it connects as, its rights."""

    number: str
    name: str = ""
    amqp_user: str | None = None  # when set, messages must carry this user_id (RabbitMQ validates it)
    invoice: bool = False  # may receive monthly invoice data on hmc.invoice


@dataclass(frozen=True)
class Settings:
    amqp_url: str = "memory://"
    amqp_ca_file: str | None = None  # with amqps://: the CA that signed RabbitMQ's certificate
    amqp_cert_file: str | None = None  # a client certificate (e.g. a SITHS function certificate)
    amqp_key_file: str | None = None
    db_url: str = "sqlite:///hmc-broker.sqlite"
    prefix: str = ""
    queue_type: QueueType = "classic"
    partitions: int = 1
    # With partitions > 1: this worker's place among `workers`. It consumes its own partitions at once and
    # the others as a standby a little later, so single-active-consumer spreads the partitions over the
    # workers and still fails over when one stops (RabbitMQ 3.x has no SAC consumer priorities).
    worker_index: int = 0
    workers: int = 1
    standby_delay_s: float = 2.0
    batch_size: int = 100
    batch_wait_ms: int = 20
    confirm_timeout_s: float = 10.0
    publish_attempts: int = 8  # an outbox row is parked after this many failed publishes
    max_message_bytes: int = XmlLimits.max_bytes
    max_xml_depth: int = XmlLimits.max_depth
    reserve_patterns: tuple[Pattern[str], ...] = field(default=identifiers.DEFAULT_RESERVE_PATTERNS)
    customers: tuple[Customer, ...] = ()
    catalog: str | None = None  # an article catalog (CSV or JSON); orders for other articles are refused
    log_level: str = "INFO"
    log_format: str = "auto"  # json, console, or auto (console on a terminal, JSON otherwise)
    http_port: int = 8080  # /metrics, /healthz, /readyz; 0 turns the endpoint off
    wire_tap: bool = True  # one monitoring event per message on hmc.events
    watch_interval_s: float = 15.0  # how often a worker looks at the partners' queues
    stale_after_s: float = 300.0  # a partner whose oldest waiting message is older counts as down
    outage_warn_s: float = 900.0
    reserve_routine_s: float = 4 * 3600.0  # the region's reserve routine: paper after 4 hours

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        settings = cls()
        if env.get("HMC_CONFIG"):
            settings = settings.with_file(Path(env["HMC_CONFIG"]))
        values: dict[str, Any] = {}
        for name, kind in _ENV.items():
            raw = env.get(f"HMC_{name.upper()}")
            if raw is not None and raw != "":
                values[name] = kind(raw)
        if env.get("HMC_RESERVE_ID_PATTERNS"):
            values["reserve_patterns"] = identifiers.reserve_patterns_from(env["HMC_RESERVE_ID_PATTERNS"])
        if env.get("HMC_CUSTOMERS"):
            values["customers"] = parse_customers(env["HMC_CUSTOMERS"])
        return replace(settings, **values).checked()

    def with_file(self, path: Path) -> Settings:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        broker = data.get("broker", {})
        for key in ("amqp_url", "db_url"):
            if key in broker and urlsplit(str(broker[key])).password:
                raise ValueError(
                    f"{path}: {key} holds a password; credentials come only from the environment (HMC_{key.upper()})"
                )
        values: dict[str, Any] = {k: _ENV[k](str(v)) for k, v in broker.items() if k in _ENV}
        if "reserve_id_patterns" in broker:
            values["reserve_patterns"] = identifiers.reserve_patterns_from(";".join(broker["reserve_id_patterns"]))
        customers = data.get("customers", [])
        if customers:
            values["customers"] = tuple(
                Customer(
                    number=str(c["number"]),
                    name=str(c.get("name", "")),
                    amqp_user=c.get("amqp_user"),
                    invoice=bool(c.get("invoice", False)),
                )
                for c in customers
            )
        return replace(self, **values)

    def checked(self) -> Settings:
        if self.queue_type not in ("classic", "quorum"):
            raise ValueError(f"HMC_QUEUE_TYPE must be classic or quorum, not {self.queue_type!r}")
        if self.partitions < 1 or self.batch_size < 1 or self.workers < 1:
            raise ValueError("HMC_PARTITIONS, HMC_BATCH_SIZE and HMC_WORKERS must be at least 1")
        if self.log_format not in ("json", "console", "auto"):
            raise ValueError(f"HMC_LOG_FORMAT must be json, console or auto, not {self.log_format!r}")
        if not 0 <= self.worker_index < self.workers:
            raise ValueError(f"HMC_WORKER_INDEX must be from 0 to {self.workers - 1}")
        for customer in self.customers:
            identifiers.check(IdKind.CUSTOMER_NUMBER, customer.number)
        return self

    @property
    def plain_amqp_host(self) -> str | None:
        """The host of a plain amqp:// URL that is not this machine (None for amqps://, memory://, loopback):
        passwords and patient data would cross a network in clear, so the first connection warns about it."""
        if not self.amqp_url.startswith("amqp://"):
            return None
        host = urlsplit(self.amqp_url).hostname or "localhost"
        if host == "localhost":
            return None
        try:
            return None if ipaddress.ip_address(host).is_loopback else host
        except ValueError:
            return host  # a name: it may resolve anywhere

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.stale_after_s, self.outage_warn_s, self.reserve_routine_s)

    @property
    def xml_limits(self) -> XmlLimits:
        return XmlLimits(max_bytes=self.max_message_bytes, max_depth=self.max_xml_depth)

    def customer(self, number: str | None) -> Customer | None:
        return next((c for c in self.customers if c.number == number), None)


def parse_customers(spec: str) -> tuple[Customer, ...]:
    """`1001:webSesam Skåne:websesam-skane:invoice,1002` -> customers (name, user and flag optional)."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        number, name, user, flags = [*item.split(":"), "", "", ""][:4]
        out.append(Customer(number=number, name=name, amqp_user=user or None, invoice=flags == "invoice"))
    return tuple(out)


_ENV: dict[str, Any] = {
    "amqp_url": str,
    "amqp_ca_file": str,
    "amqp_cert_file": str,
    "amqp_key_file": str,
    "db_url": str,
    "prefix": str,
    "queue_type": str,
    "partitions": int,
    "worker_index": int,
    "workers": int,
    "standby_delay_s": float,
    "batch_size": int,
    "batch_wait_ms": int,
    "confirm_timeout_s": float,
    "publish_attempts": int,
    "max_message_bytes": int,
    "max_xml_depth": int,
    "catalog": str,
    "log_level": str,
    "log_format": str,
    "http_port": int,
    "wire_tap": lambda v: v.strip().lower() in ("1", "true", "yes", "on"),
    "watch_interval_s": float,
    "stale_after_s": float,
    "outage_warn_s": float,
    "reserve_routine_s": float,
}
