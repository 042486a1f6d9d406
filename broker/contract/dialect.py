"""Read and write messages in either dialect: hardened parse, XSD, binding, identifier rules.

`read()` tells the dialect from the root's namespace; every refusal comes back as Problems,
never as an exception, so one bad message never stops the others.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from re import Pattern

from lxml import etree

from broker.contract import identifiers, normal_form, rules, safe_xml, schema
from broker.contract.binding import Binding, Context
from broker.contract.mapping import TYPE_MAPS
from broker.model.codes import Side
from broker.model.messages import SCHEMA_VERSIONS, ArticleRegisterUpdate, Message, Problem

CUSTOMER_NS = "urn:x-hmc-broker:customer:v1"
SESAM2_NS = "urn:x-hmc-broker:sesam2:v1"

SOURCE_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"  # a checkout
_WHEEL_SCHEMA_DIR = Path(__file__).resolve().parents[2] / "broker" / "_schemas"  # an installed wheel


def schema_dir() -> Path:
    return _WHEEL_SCHEMA_DIR if _WHEEL_SCHEMA_DIR.is_dir() else SOURCE_SCHEMA_DIR


@dataclass(frozen=True)
class XmlDialect:
    name: Side
    namespace: str
    schema_file: str  # relative to the schema directory
    title: str

    @property
    def versions(self) -> dict[str, str]:
        """Every schema version of this dialect (the x-schema-version header's values) -> its XSD file
        relative to the schema directory; the AsyncAPI document and the bundle enumerate these. The customer
        dialect's older versions have XSDs of their own beside the newest (broker/contract/generate.py);
        SESAM2's one XSD takes every version (what 1.1 added is optional there), as its header carries the
        version of the customer message it came from."""
        if self.name is not Side.CUSTOMER:
            return dict.fromkeys(SCHEMA_VERSIONS, self.schema_file)
        older = {v: self.schema_file.replace(".xsd", f"-{v}.xsd") for v in SCHEMA_VERSIONS[:-1]}
        return {**older, SCHEMA_VERSIONS[-1]: self.schema_file}

    @functools.cached_property
    def binding(self) -> Binding:
        return Binding(self.name, self.namespace)

    def binding_for(self, version: str | None) -> Binding:
        """The binding that writes `version` of this dialect (None, or the newest: the full binding)."""
        if version is None or version == SCHEMA_VERSIONS[-1] or self.name is not Side.CUSTOMER:
            return self.binding
        return _versioned(self.name, self.namespace, version)

    @property
    def schema_path(self) -> Path:
        return schema_dir() / self.schema_file

    @functools.cached_property
    def compiled_schema(self) -> etree.XMLSchema:
        """The compiled XSD; cached here because schema_path stats the file system on every call."""
        return schema.load(self.schema_path)

    def render(self, message: Message, version: str | None = None) -> bytes:
        """The message as a document; `version`: for a customer on an older version of the customer dialect
        (its SchemaVersion, and only the elements that version has)."""
        if version is not None and self.name is Side.CUSTOMER and message.header.schema_version != version:
            message = dataclasses.replace(message, header=dataclasses.replace(message.header, schema_version=version))
        return self.binding_for(version).render(message)


@functools.cache
def _versioned(side: Side, namespace: str, version: str) -> Binding:
    return Binding(side, namespace, version)


DIALECTS: dict[Side, XmlDialect] = {
    Side.CUSTOMER: XmlDialect(
        Side.CUSTOMER,
        CUSTOMER_NS,
        "customer/v1/customer.xsd",
        "Customer-system dialect of HMC Broker, v1.",
    ),
    Side.SESAM2: XmlDialect(
        Side.SESAM2, SESAM2_NS, "sesam2/v1/sesam2.xsd", "SESAM2 integration dialect of HMC Broker, v1."
    ),
}
BY_NAMESPACE = {d.namespace: d for d in DIALECTS.values()}


@dataclass
class Parsed:
    """The outcome of reading one message; `message` is None when anything was refused."""

    dialect: XmlDialect | None = None
    root_name: str | None = None
    message: Message | None = None
    problems: list[Problem] = field(default_factory=list)
    # Best effort, also for invalid messages: whom to send the Rejection, which message it answers.
    claimed_message_id: str | None = None
    claimed_customer: str | None = None

    @property
    def ok(self) -> bool:
        return self.message is not None and not self.problems


@dataclass(frozen=True)
class ReadPolicy:
    limits: safe_xml.XmlLimits = field(default_factory=safe_xml.XmlLimits)
    reserve_patterns: tuple[Pattern[str], ...] = identifiers.DEFAULT_RESERVE_PATTERNS


def read(data: bytes, policy: ReadPolicy | None = None) -> Parsed:
    policy = policy or ReadPolicy()
    result = Parsed()
    try:
        root = safe_xml.parse(data, policy.limits)
    except safe_xml.XmlRefused as e:
        result.problems.append(e.problem)
        return result
    qname = etree.QName(root)
    result.root_name = qname.localname
    dialect = BY_NAMESPACE.get(qname.namespace or "")
    if dialect is None:
        expected = " or ".join(BY_NAMESPACE)
        result.problems.append(
            Problem(
                rule="xml.namespace",
                message=f"unknown namespace '{qname.namespace or ''}' on <{qname.localname}>; expected {expected}",
                path=f"/{qname.localname}",
                line=root.sourceline,
            )
        )
        return result
    result.dialect = dialect
    _claims(result, root, dialect)
    if qname.localname not in dialect.binding.roots:
        result.problems.append(
            Problem(
                rule="message.unknown-type",
                message=f"<{qname.localname}> is not a message type of the {dialect.name} dialect",
                path=f"/{qname.localname}",
                line=root.sourceline,
            )
        )
        return result
    if normal_form.needs_normalising(data):
        normal_form.normalise_tree(root)  # before the schema counts characters
    result.problems.extend(schema.validate(dialect.compiled_schema, root, dialect.binding.repeated))
    if result.problems:
        return result
    ctx = Context(reserve_patterns=policy.reserve_patterns)
    result.message = dialect.binding.parse(root, ctx)
    result.problems.extend(ctx.problems)
    if result.message is not None:
        _check_header(result, result.message)
    if result.message is not None:
        _check_rules(result, result.message, dialect)
    return result


def _check_rules(result: Parsed, message: Message, dialect: XmlDialect) -> None:
    breaches = rules.check(message)
    for breach in breaches:
        path = dialect.binding.element_path(type(message), breach.field)
        result.problems.append(Problem(rule=breach.rule, message=breach.message, path=path))
    if breaches:
        result.message = None


def _claims(result: Parsed, root: etree._Element, dialect: XmlDialect) -> None:
    header = dialect.binding.header_paths
    found_id = root.find(header["message_id"])
    found_customer = root.find(header["customer_number"])
    result.claimed_message_id = (found_id.text or "").strip()[:64] if found_id is not None else None
    result.claimed_customer = (found_customer.text or "").strip()[:16] if found_customer is not None else None


def _check_header(result: Parsed, message: Message) -> None:
    """Header rules the schema cannot express: the type matches the root, only a broadcast
    (ArticleRegisterUpdate) may leave the customer number out, and a customer document names a version of the
    customer dialect that has its type (elements a later version added are read whatever it names)."""
    if message.header.customer_number is None and not isinstance(message, ArticleRegisterUpdate):
        header = result.dialect.binding.header_paths if result.dialect else {}
        result.problems.append(
            Problem(
                rule="header.customer-number",
                message=f"the customer number is required on {type(message).__name__}",
                path=f"/{result.root_name}/{_local_path(header.get('customer_number', 'CustomerNumber'))}",
            )
        )
        result.message = None
    version = message.header.schema_version
    if result.dialect is not None and result.dialect.name is Side.CUSTOMER and not speaks(version, type(message)):
        known = ", ".join(SCHEMA_VERSIONS)
        since = TYPE_MAPS[type(message)].since
        result.problems.append(
            Problem(
                rule="header.schema-version",
                message=f"SchemaVersion {version[:10]} is not one of {known}"
                if version not in SCHEMA_VERSIONS
                else f"{type(message).__name__} is new in {since}: send SchemaVersion {since} or later",
                path=f"/{result.root_name}/Header/SchemaVersion",
            )
        )
        result.message = None
    if message.header.message_type != type(message).__name__:
        result.problems.append(
            Problem(
                rule="header.message-type",
                message=f"header says {message.header.message_type} but the document is {type(message).__name__}",
                path=f"/{result.root_name}",
            )
        )
        result.message = None


def speaks(version: str, message_type: type[Message]) -> bool:
    """Whether a customer document of `version` may be of this type (a type a later version added: no)."""
    if version not in SCHEMA_VERSIONS:
        return False
    return SCHEMA_VERSIONS.index(version) >= SCHEMA_VERSIONS.index(TYPE_MAPS[message_type].since)


def _local_path(qualified: str) -> str:
    return "/".join(etree.QName(step).localname for step in qualified.split("/"))
