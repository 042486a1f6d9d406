"""Settings, read once at start from the environment (HMC_*) and an optional TOML file (HMC_CONFIG).

The environment wins over the file. Secrets (passwords in URLs, HMC_PII_KEY) come only from the
environment; the file holds what may be committed: customers, tuning, names.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from re import Pattern
from typing import Any, Literal
from urllib.parse import urlsplit

from broker.contract import identifiers
from broker.contract.safe_xml import XmlLimits
from broker.model.messages import SCHEMA_VERSIONS
from broker.model.types import IdKind
from broker.observability.watch import Thresholds

QueueType = Literal["classic", "quorum"]


class ConfigurationError(ValueError):
    """A setting that cannot be used: its name (or the file and key) and the rule it breaks."""


@dataclass(frozen=True)
class BufferArticle:
    """An article a buffer store keeps: under `safety_level` on hand, `refill_quantity` is ordered."""

    article_number: str
    safety_level: int
    refill_quantity: int
    article_type: str = "main-aid"  # the generated order line's ArticleType


@dataclass(frozen=True)
class BufferStore:
    """A customer's local buffer store (buffertförråd) under automatic replenishment.

    The address and the responsible person go on the replenishment orders the broker generates: SESAM2
    needs a delivery address and an orderer (HSA-id) on every order, as on a customer's own.
    """

    store_id: str
    name: str
    street: str
    postal_code: str
    city: str
    orderer_hsa_id: str
    orderer_name: str
    unit_hsa_id: str | None = None
    articles: tuple[BufferArticle, ...] = ()

    def article(self, number: str) -> BufferArticle | None:
        return next((a for a in self.articles if a.article_number == number), None)


@dataclass(frozen=True)
class Customer:
    """A customer system: the customer numbers it owns, the AMQP user it connects as, its rights."""

    number: str
    name: str = ""
    amqp_user: str | None = None  # when set, messages must carry this user_id (RabbitMQ validates it)
    invoice: bool = False  # may receive monthly invoice data on hmc.invoice
    # Operator ids (as given to --operator) that may export this customer's invoice data; needs invoice too.
    invoice_exporters: tuple[str, ...] = ()
    buffer_stores: tuple[BufferStore, ...] = ()
    # The customer dialect's version it speaks: what it gets is written in it (SchemaVersion and elements).
    schema_version: str = "1.0"

    def buffer_store(self, store_id: str) -> BufferStore | None:
        return next((b for b in self.buffer_stores if b.store_id == store_id), None)


@dataclass(frozen=True)
class Settings:
    """Every setting of the broker, with its default; HMC_<NAME> sets one (see from_env)."""

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
        _refuse_misspelt_variables(env)
        values: dict[str, Any] = {}
        for name, kind in _ENV.items():
            raw = env.get(f"HMC_{name.upper()}")
            if raw is not None and raw != "":
                values[name] = _parsed(f"HMC_{name.upper()}", kind, raw)
        if env.get("HMC_RESERVE_ID_PATTERNS"):
            values["reserve_patterns"] = identifiers.reserve_patterns_from(env["HMC_RESERVE_ID_PATTERNS"])
        if env.get("HMC_CUSTOMERS"):
            values["customers"] = parse_customers(env["HMC_CUSTOMERS"])
        if env.get("HMC_INVOICE_EXPORTERS"):
            exporters = parse_invoice_exporters(env["HMC_INVOICE_EXPORTERS"])
            values["customers"] = tuple(
                replace(c, invoice_exporters=exporters.get(c.number, ()))
                for c in values.get("customers", settings.customers)
            )
        return replace(settings, **values).checked()

    def with_file(self, path: Path) -> Settings:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        broker = data.get("broker", {})
        for key in ("amqp_url", "db_url"):
            if key in broker and urlsplit(str(broker[key])).password:
                raise ConfigurationError(
                    f"{path}: {key} holds a password; credentials come only from the environment (HMC_{key.upper()})"
                )
        unknown = sorted(set(broker) - set(_ENV) - {"reserve_id_patterns"})
        if unknown:
            known = [*_ENV, "reserve_id_patterns"]
            raise ConfigurationError(f"{path}: [broker] has no setting {_with_nearest(unknown[0], known)}")
        values: dict[str, Any] = {k: _parsed(f"{path}: {k}", _ENV[k], str(v)) for k, v in broker.items() if k in _ENV}
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
                    invoice_exporters=tuple(str(x) for x in c.get("invoice_exporters", [])),
                    buffer_stores=tuple(_buffer_store(b) for b in c.get("buffer_stores", [])),
                    schema_version=str(c.get("schema_version", "1.0")),
                )
                for c in customers
            )
        return replace(self, **values)

    def checked(self) -> Settings:
        for c in self.customers:
            if c.schema_version not in SCHEMA_VERSIONS:
                known = ", ".join(SCHEMA_VERSIONS)
                raise ConfigurationError(
                    f"customer {c.number}: schema_version {c.schema_version!r} is not one of {known}"
                )
        if self.queue_type not in ("classic", "quorum"):
            raise ConfigurationError(f"HMC_QUEUE_TYPE must be classic or quorum, not {self.queue_type!r}")
        if self.partitions < 1 or self.batch_size < 1 or self.workers < 1:
            raise ConfigurationError("HMC_PARTITIONS, HMC_BATCH_SIZE and HMC_WORKERS must be at least 1")
        if self.log_format not in ("json", "console", "auto"):
            raise ConfigurationError(f"HMC_LOG_FORMAT must be json, console or auto, not {self.log_format!r}")
        if not 0 <= self.worker_index < self.workers:
            raise ConfigurationError(f"HMC_WORKER_INDEX must be from 0 to {self.workers - 1}")
        for customer in self.customers:
            identifiers.check(IdKind.CUSTOMER_NUMBER, customer.number)
            for store in customer.buffer_stores:
                _check_buffer_store(customer.number, store)
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

    def __repr__(self) -> str:
        # Never the passwords of the URLs: a traceback that shows locals, or a log of the settings, must not
        # print them.
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["amqp_url"], shown["db_url"] = safe_url(self.amqp_url), safe_url(self.db_url)
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def safe_url(url: str) -> str:
    """A URL with its password replaced by ***."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_customers(spec: str) -> tuple[Customer, ...]:
    """`1001:webSesam Skåne:websesam-skane:invoice:1.1,1002` -> customers (name, user, flag and the customer
    dialect's version optional)."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        number, name, user, flags, version = [*item.split(":"), "", "", "", ""][:5]
        out.append(
            Customer(
                number=number,
                name=name,
                amqp_user=user or None,
                invoice=flags == "invoice",
                schema_version=version or "1.0",
            )
        )
    return tuple(out)


def parse_invoice_exporters(spec: str) -> dict[str, tuple[str, ...]]:
    """`1001:anna.andersson,1001:bertil.berg,2040:carl` -> per customer number, who may export invoices."""
    out: dict[str, tuple[str, ...]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        number, _, operator = item.partition(":")
        if not operator.strip():
            raise ConfigurationError(f"HMC_INVOICE_EXPORTERS: {item!r} is not CUSTOMER:OPERATOR")
        out[number.strip()] = (*out.get(number.strip(), ()), operator.strip())
    return out


def _buffer_store(data: dict[str, Any]) -> BufferStore:
    try:
        return BufferStore(
            store_id=str(data["id"]),
            name=str(data["name"]),
            street=str(data["street"]),
            postal_code=str(data["postal_code"]),
            city=str(data["city"]),
            orderer_hsa_id=str(data["orderer_hsa_id"]),
            orderer_name=str(data["orderer_name"]),
            unit_hsa_id=data.get("unit_hsa_id"),
            articles=tuple(
                BufferArticle(
                    article_number=str(a["article"]),
                    safety_level=int(a["safety_level"]),
                    refill_quantity=int(a["refill_quantity"]),
                    article_type=str(a.get("article_type", "main-aid")),
                )
                for a in data.get("articles", [])
            ),
        )
    except KeyError as e:
        raise ConfigurationError(f"buffer store {data.get('id', '?')}: {e.args[0]} is missing") from None


def _check_buffer_store(customer: str, store: BufferStore) -> None:
    """A store the broker orders for must make a valid order: refuse at start, not at the first under-run."""
    where = f"customer {customer}, buffer store {store.store_id}"

    def valid(kind: IdKind, value: str, name: str) -> None:
        try:
            identifiers.check(kind, value)
        except identifiers.IdentifierError as e:
            raise ConfigurationError(f"{where}: {name} {value!r}: {e}") from None

    valid(IdKind.REFERENCE, store.store_id, "id")
    valid(IdKind.HSA_ID, store.orderer_hsa_id, "orderer_hsa_id")
    if store.unit_hsa_id:
        valid(IdKind.HSA_ID, store.unit_hsa_id, "unit_hsa_id")
    if not all(text.strip() for text in (store.name, store.street, store.city, store.orderer_name)):
        raise ConfigurationError(f"{where}: name, street, city and orderer_name must not be empty")
    valid(IdKind.POSTAL_CODE, store.postal_code, "postal_code")
    seen: set[str] = set()
    for a in store.articles:
        valid(IdKind.ARTICLE_NUMBER, a.article_number, "article")
        if a.article_number in seen:
            raise ConfigurationError(f"{where}: article {a.article_number} is listed twice")
        seen.add(a.article_number)
        if a.safety_level < 0 or not 1 <= a.refill_quantity <= 99999:
            raise ConfigurationError(f"{where}, article {a.article_number}: safety_level >= 0, refill_quantity 1-99999")
        if a.article_type not in ("main-aid", "accessory", "spare-part"):
            raise ConfigurationError(f"{where}, article {a.article_number}: article_type {a.article_type!r} is unknown")


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError("is neither true nor false (1/0, true/false, yes/no, on/off)")


_PARSERS: dict[str, Any] = {"str": str, "int": int, "float": float, "bool": _flag, "QueueType": str}
_SPECIAL = {"reserve_patterns", "customers"}  # HMC_RESERVE_ID_PATTERNS and HMC_CUSTOMERS have parsers of their own
# The plain settings, one per Settings field, each read from HMC_<NAME> with the parser of its type: the
# dataclass is the one list of settings.
_ENV: dict[str, Any] = {
    f.name: _PARSERS[str(f.type).removesuffix(" | None")] for f in fields(Settings) if f.name not in _SPECIAL
}
# Variables of ours that are not Settings fields (read where they are used).
_OTHER_VARIABLES = {"HMC_CONFIG", "HMC_RESERVE_ID_PATTERNS", "HMC_CUSTOMERS", "HMC_INVOICE_EXPORTERS", "HMC_PII_KEY",
                    "HMC_RETENTION"}  # fmt: skip
_WORDS = {"int": "a whole number", "float": "a number", "str": "text"}


def _parsed(where: str, kind: Any, raw: str) -> Any:
    try:
        return kind(raw.strip() if kind is not str else raw)
    except ValueError as e:
        rule = _WORDS.get(getattr(kind, "__name__", ""), "")
        raise ConfigurationError(f"{where}: {raw!r} {f'is not {rule}' if rule else e}") from None


def _refuse_misspelt_variables(env: dict[str, str]) -> None:
    """An HMC_ variable that is not ours but is close to one of ours is a typo: refuse it by name. Others (a
    test harness's, another tool's) are left alone."""
    known = [f"HMC_{name.upper()}" for name in _ENV] + sorted(_OTHER_VARIABLES)
    for name in sorted(env):
        if name.startswith("HMC_") and name not in known:
            nearest = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if nearest:
                raise ConfigurationError(f"{name} is not a setting; did you mean {nearest[0]}?")


def _with_nearest(name: str, known: list[str]) -> str:
    nearest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"{name!r}" + (f"; did you mean {nearest[0]!r}?" if nearest else f" (known: {', '.join(sorted(known))})")
