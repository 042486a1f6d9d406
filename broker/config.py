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
from datetime import timedelta
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
    buffer_stores: tuple[BufferStore, ...] = ()
    # The customer dialect's version it speaks: what it gets is written in it (SchemaVersion and elements).
    schema_version: str = "1.0"

    def buffer_store(self, store_id: str) -> BufferStore | None:
        return next((b for b in self.buffer_stores if b.store_id == store_id), None)


def _setting(
    default: Any, meaning: str, *, variable: str | None = None, shown: str | None = None, kind: str | None = None
) -> Any:
    """A Settings field with what the README's configuration table says of it (see variables())."""
    return field(default=default, metadata={"meaning": meaning, "variable": variable, "shown": shown, "kind": kind})


@dataclass(frozen=True)
class Settings:
    """Every setting of the broker, with its default; HMC_<NAME> sets one (see from_env)."""

    amqp_url: str = _setting(
        "memory://",
        "RabbitMQ (`amqps://user:pass@host:5671/vhost` in production); `memory://` is the in-process transport; "
        "a cluster's nodes `;`-separated (`amqp://...@node1/vhost;amqp://...@node2/vhost`): connections go to the "
        "first that answers and fail over to the next",
        kind="URL, secret",
    )
    amqp_ca_file: str | None = _setting(
        None,
        "with `amqps://`: the CA that signed RabbitMQ's certificate (the server is always verified, host name "
        "included)",
        shown="system CAs",
        kind="path",
    )
    amqp_cert_file: str | None = _setting(
        None, "a client certificate to present (e.g. a SITHS function certificate)", kind="path"
    )
    amqp_key_file: str | None = _setting(None, "the client certificate's key", kind="path")
    amqp_heartbeat_s: int = _setting(
        3,
        "the AMQP heartbeat of a worker's consuming connection: RabbitMQ closes a frozen worker's connection "
        "after two to three times this, and its partitions go to the standby (a busy worker keeps sending it)",
    )
    db_url: str = _setting(
        "sqlite:///hmc-broker.sqlite",
        "the message store (`postgresql+psycopg://...` in production); a primary and its standby both named "
        "(libpq multi-host: `postgresql+psycopg://user@/hmc?host=pg1:5432&host=pg2:5432&target_session_attrs="
        "read-write`): connections go to the one that takes writes, so the workers follow a promotion",
        kind="URL, secret",
    )
    prefix: str = _setting("", "prefix of every exchange and queue name, per environment")
    queue_type: QueueType = _setting(
        "classic", "`classic` or `quorum` (changing it needs the queues drained and deleted)"
    )
    partitions: int = _setting(1, "inbound partitions per side (ordering across several workers)")
    # With partitions > 1: this worker's place among `workers`. It consumes its own partitions at once and
    # the others as a standby a little later, so single-active-consumer spreads the partitions over the
    # workers and still fails over when one stops (RabbitMQ 3.x has no SAC consumer priorities).
    worker_index: int = _setting(0, "this worker's place among `HMC_WORKERS` (0 to workers - 1)")
    workers: int = _setting(1, "how many workers share the partitions")
    standby_delay_s: float = _setting(2.0, "how long a worker waits before standing by for other workers' partitions")
    batch_size: int = _setting(100, "messages per transaction (prefetch is twice this)")
    batch_wait_ms: int = _setting(
        20,
        "the longest a batch waits to fill once its first message arrived (messages already there always join); "
        "it closes sooner when full or when nothing arrived for 1 ms, at once with 0 (a trickle is not held back)",
    )
    confirm_timeout_s: float = _setting(10.0, "how long to wait for publisher confirms")
    publish_attempts: int = _setting(8, "failed publishes before an outbox row is parked")
    max_message_bytes: int = _setting(
        XmlLimits.max_bytes,
        "larger messages are refused (`xml.too-large`) before parsing, and stored only as their first 64 KiB "
        "with size and SHA-256",
    )
    max_xml_depth: int = _setting(XmlLimits.max_depth, "deeper documents are refused (`xml.too-deep`)")
    reserve_patterns: tuple[Pattern[str], ...] = _setting(
        identifiers.DEFAULT_RESERVE_PATTERNS,
        "the region's reservnummer forms, `;`-separated regular expressions matched against the whole "
        "upper-cased value",
        variable="HMC_RESERVE_ID_PATTERNS",
        shown=";".join(p.pattern for p in identifiers.DEFAULT_RESERVE_PATTERNS),
        kind="patterns",
    )
    customers: tuple[Customer, ...] = _setting(
        (),
        "customer systems, `number:name:amqp_user:invoice:version` comma-separated (all but the number optional; "
        "version: the customer dialect's, `1.0` by default or `1.1`); in the TOML, `[[customers]]` with buffer "
        "stores and invoice exporters",
        kind="list",
    )
    catalog: str | None = _setting(
        None,
        "article catalog file (CSV or JSON export) under the store's article register (`hmc-broker catalog import` "
        "puts one there; the store's articles win); orders for unknown or withdrawn articles are refused",
        kind="path",
    )
    log_level: str = _setting("INFO", "log level")
    log_format: str = _setting(
        "auto", "`json`, `console`, or `auto` (console on a terminal, JSON lines otherwise)", kind="choice"
    )
    http_port: int = _setting(
        8080, "the worker's `/metrics`, `/healthz`, `/readyz`; 0 turns it off (one port per worker on a host)"
    )
    wire_tap: bool = _setting(True, "one processing event per message on `hmc.events`")
    watch_interval_s: float = _setting(15.0, "how often a worker looks at the partners' and its own queues")
    stale_after_s: float = _setting(300.0, "a partner whose oldest waiting message is older counts as not consuming")
    outage_warn_s: float = _setting(900.0, "warn when a partner has not consumed for this long")
    reserve_routine_s: float = _setting(
        4 * 3600.0, "raise the reserve-routine flag (4 hours: the region's paper routine)"
    )
    console_host: str = _setting("127.0.0.1", "where `hmc-broker console` listens (behind a TLS proxy in production)")
    console_port: int = _setting(8400, "the console's port")
    console_dormant_days: int = _setting(
        365, "a console account unused this long is disabled (the regions' access routine)"
    )
    # OpenID Connect login for the console (authorization code + PKCE); the client secret only from the
    # environment (HMC_CONSOLE_OIDC_SECRET). Claims name the account and give its roles.
    console_oidc_issuer: str | None = _setting(
        None, "the console's OpenID Connect issuer URL (login with authorization code + PKCE); unset: local accounts"
    )
    console_oidc_client_id: str | None = _setting(None, "the console's OpenID Connect client id")
    console_oidc_name_claim: str = _setting("preferred_username", "the ID token claim that names the account")
    console_oidc_roles_claim: str = _setting("roles", "the ID token claim that holds the account's roles")
    console_oidc_role_map: str = _setting(
        "", "IdP value=console role, comma-separated; empty: the claim's values are role names"
    )

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
            raise ConfigurationError(f"HMC_INVOICE_EXPORTERS: {_EXPORTERS_MOVED}")
        return replace(settings, **values).checked()

    def with_file(self, path: Path) -> Settings:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        broker = data.get("broker", {})
        for key in ("amqp_url", "db_url"):
            if key in broker and any(urlsplit(u).password for u in str(broker[key]).split(";")):
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
        for c in customers:
            if "invoice_exporters" in c:
                raise ConfigurationError(f"{path}: customer {c.get('number')}: invoice_exporters: {_EXPORTERS_MOVED}")
        if customers:
            values["customers"] = tuple(
                Customer(
                    number=str(c["number"]),
                    name=str(c.get("name", "")),
                    amqp_user=c.get("amqp_user"),
                    invoice=bool(c.get("invoice", False)),
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
        if not 0 < self.amqp_heartbeat_s <= 60:
            raise ConfigurationError("HMC_AMQP_HEARTBEAT_S must be from 1 to 60 seconds")
        if not 0 < self.console_port < 65536 or self.console_dormant_days < 1:
            raise ConfigurationError("HMC_CONSOLE_PORT must be from 1 to 65535 and HMC_CONSOLE_DORMANT_DAYS at least 1")
        schemes = {urlsplit(u).scheme for u in self.amqp_urls}
        if len(schemes) > 1:
            # One TLS setting serves all of a URL's nodes (each checked against its own name): all or none.
            raise ConfigurationError(
                "HMC_AMQP_URL: every node in one scheme, not "
                f"{' and '.join(sorted(s + '://' for s in schemes))} (TLS to all of a cluster's nodes, or to none)"
            )
        if not 0 <= self.worker_index < self.workers:
            raise ConfigurationError(f"HMC_WORKER_INDEX must be from 0 to {self.workers - 1}")
        for customer in self.customers:
            identifiers.check(IdKind.CUSTOMER_NUMBER, customer.number)
            for store in customer.buffer_stores:
                _check_buffer_store(customer.number, store)
        return self

    @property
    def amqp_urls(self) -> list[str]:
        """The nodes of HMC_AMQP_URL, in the order they are tried (one for a single node)."""
        return [u.strip() for u in self.amqp_url.split(";") if u.strip()]

    @property
    def plain_amqp_host(self) -> str | None:
        """The first host of a plain amqp:// URL that is not this machine (None for amqps://, memory://,
        loopback): passwords and patient data would cross a network in clear, so the first connection warns."""
        return next(filter(None, (_plain_remote_host(u) for u in self.amqp_urls)), None)

    @property
    def dormant_after(self) -> timedelta:
        """HMC_CONSOLE_DORMANT_DAYS as a period: an account unused this long is disabled (broker/store/accounts.py)."""
        return timedelta(days=self.console_dormant_days)

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


def _plain_remote_host(url: str) -> str | None:
    if not url.startswith("amqp://"):
        return None
    host = urlsplit(url).hostname or "localhost"
    if host == "localhost":
        return None
    try:
        return None if ipaddress.ip_address(host).is_loopback else host
    except ValueError:
        return host  # a name: it may resolve anywhere


def safe_url(url: str) -> str:
    """A URL with its password replaced by *** (each of a `;`-separated list of nodes)."""
    if ";" in url:
        return ";".join(safe_url(u) for u in url.split(";"))
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


# Who may export a customer's invoice data is an account's role since #15, for the CLI and the console alike.
_EXPORTERS_MOVED = (
    "who may export invoice data is no longer configured here: it is the role invoice:CUSTOMER of an account "
    "in the store, for `hmc-broker invoice export` (--operator names the account) and the console alike. "
    "Grant it to each exporter (hmc-broker users roles NAME --role invoice:1001 ..., or users add), then "
    "remove this setting (README, Invoice data)"
)


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
_WORDS = {"int": "a whole number", "float": "a number", "str": "text"}


@dataclass(frozen=True)
class Variable:
    """An HMC_ variable as the README's configuration table shows it (broker/settings_table.py)."""

    name: str
    kind: str  # what its value is, in words
    default: str  # as shown: `a value`, a number, or words
    meaning: str


# Variables of ours that are not Settings fields, read where they are used.
_OTHER_VARIABLES = (
    Variable("HMC_CONFIG", "path", "-", "a TOML file with `[broker]` settings and `[[customers]]`"),
    Variable(
        "HMC_PII_KEY",
        "secret",
        "random per process",
        "key of the HMAC that masks patient identifiers in logs and errors (`[patient-id:xxxxxxxx]`); set it so "
        "masked ids correlate across workers and restarts",
    ),
    Variable(
        "HMC_CONSOLE_SECRET",
        "secret",
        "random per process",
        "key that signs the console's session cookies; set it so sessions survive a restart and work behind "
        "several console processes (environment only)",
    ),
    Variable(
        "HMC_CONSOLE_OIDC_SECRET",
        "secret",
        "-",
        "the console's OpenID Connect client secret (environment only)",
    ),
    Variable(
        "HMC_RETENTION",
        "list",
        "`default=90d`",
        "how long `hmc-broker prune` keeps payloads of settled messages, per message type: "
        "`default=90d,InvoiceData=3650d` (periods in `d`, `w`, `y`, `h`)",
    ),
)
_KINDS = {"int": "whole number", "float": "number", "bool": "flag", "str": "text", "QueueType": "choice"}


def variables() -> list[Variable]:
    """Every HMC_ variable the broker reads, HMC_CONFIG first, then the Settings fields in their order."""
    out = [_OTHER_VARIABLES[0]]
    for f in fields(Settings):
        meta = f.metadata
        plain = str(f.type).removesuffix(" | None")
        if meta["shown"] is not None:
            default = meta["shown"] if " " in meta["shown"] else f"`{meta['shown']}`"
        elif f.default is None or f.default == ():
            default = "-"
        elif f.default == "":
            default = "empty"
        elif isinstance(f.default, bool):
            default = f"`{str(f.default).lower()}`"
        elif isinstance(f.default, float):
            default = f"{f.default:g}"
        elif isinstance(f.default, int):
            default = str(f.default)
        else:
            default = f"`{f.default}`"
        name = meta["variable"] or f"HMC_{f.name.upper()}"
        kind = meta["kind"] or _KINDS[plain]
        out.append(Variable(name, kind, default, meta["meaning"]))
    return [*out, *_OTHER_VARIABLES[1:]]


def _parsed(where: str, kind: Any, raw: str) -> Any:
    try:
        return kind(raw.strip() if kind is not str else raw)
    except ValueError as e:
        rule = _WORDS.get(getattr(kind, "__name__", ""), "")
        raise ConfigurationError(f"{where}: {raw!r} {f'is not {rule}' if rule else e}") from None


def _refuse_misspelt_variables(env: dict[str, str]) -> None:
    """An HMC_ variable that is not ours but is close to one of ours is a typo: refuse it by name. Others (a
    test harness's, another tool's) are left alone."""
    known = [v.name for v in variables()]
    for name in sorted(env):
        if name.startswith("HMC_") and name not in known:
            nearest = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if nearest:
                raise ConfigurationError(f"{name} is not a setting; did you mean {nearest[0]}?")


def _with_nearest(name: str, known: list[str]) -> str:
    nearest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f"{name!r}" + (f"; did you mean {nearest[0]!r}?" if nearest else f" (known: {', '.join(sorted(known))})")
