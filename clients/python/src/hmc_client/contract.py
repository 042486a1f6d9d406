"""The contract as the client knows it: read from HMC Broker's AsyncAPI document and XSDs, never written here.

`Contract.load()` reads asyncapi.json and the XSDs from a directory: a bundle a customer downloaded
(`hmc-broker contract --bundle DIR`), else the copy shipped inside this package, else a checkout's schemas/.
From the document it takes, per message type and dialect, the root element, namespace, the XSD of each schema
version, the routing key and where the correlation id is; per dialect where the header fields are; and the
addresses of the exchanges and queues each side publishes to and consumes.

`read()` parses a document safely (no DTDs, entities or network) and validates it against the XSD of the schema
version it declares: a message that would be rejected is refused here, before it is sent.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree

DOCUMENT = "asyncapi.json"
_CHECKOUT = Path(__file__).resolve().parents[4] / "schemas"  # clients/python/src/hmc_client -> the repository


@dataclass(frozen=True)
class Problem:
    """Why a message is refused: the rule, a message, and where (element path, line) when known."""

    rule: str
    message: str
    path: str | None = None
    line: int | None = None
    value: str | None = None

    def __str__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        line = f" (line {self.line})" if self.line else ""
        return f"{self.rule}{where}{line}: {self.message}"


class InvalidMessage(ValueError):
    """A message the contract refuses, with every problem."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class MessageSpec:
    type: str  # the AMQP `type` property, e.g. CustomerOrder
    dialect: str  # customer or sesam2
    element: str  # the root element, e.g. CustomerOrder or ORDERS
    namespace: str
    schemas: dict[str, str]  # schema version -> XSD file, relative to the contract directory
    routing_key: str  # a template: <customerNumber>.CustomerOrder, or ORDERS's type for SESAM2
    correlation: str  # the element (path from the root) holding the order this message is about


@dataclass(frozen=True)
class Document:
    """A message read and valid: its spec, the parsed tree, and the header's values by field name."""

    spec: MessageSpec
    root: etree._Element
    header: dict[str, str]

    @property
    def message_id(self) -> str:
        return self.header["message_id"]

    @property
    def schema_version(self) -> str:
        return self.header["schema_version"]

    @property
    def customer_number(self) -> str | None:
        return self.header.get("customer_number")

    @property
    def correlation_id(self) -> str | None:
        return self.header.get("correlation_id") or self.find(self.spec.correlation)

    def find(self, path: str) -> str | None:
        """The text of the element at `path` (local names from the root, slash-separated), None when absent."""
        found = self.root.find("/".join(f"{{{self.spec.namespace}}}{step}" for step in path.split("/") if step))
        return found.text.strip() if found is not None and found.text is not None else None


class Contract:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.document: dict[str, Any] = json.loads((directory / DOCUMENT).read_text(encoding="utf-8"))
        components = self.document["components"]
        self.messages: dict[tuple[str, str], MessageSpec] = {}
        self.by_root: dict[tuple[str, str], MessageSpec] = {}
        for message in components["messages"].values():
            payload = message["payload"]
            if "x-xsd" not in payload:
                continue  # the JSON events on hmc.events
            dialect = message["traits"][0]["$ref"].rsplit("/", 1)[1].removesuffix("Envelope")
            first = payload["x-xsd"][0]
            spec = MessageSpec(
                type=message["name"],
                dialect=dialect,
                element=first["element"],
                namespace=first["namespace"],
                schemas={x["schemaVersion"]: x["schema"] for x in payload["x-xsd"]},
                routing_key=message["x-routing-key"],
                correlation=message["correlationId"]["location"].split("#", 1)[1].split("/", 2)[2],
            )
            self.messages[(dialect, spec.type)] = spec
            self.by_root[(spec.namespace, spec.element)] = spec
        self.header_elements: dict[str, dict[str, str]] = {
            name.removesuffix("Envelope"): trait["x-header-elements"]
            for name, trait in components["messageTraits"].items()
            if "x-header-elements" in trait
        }

    @classmethod
    def load(cls, directory: Path | str | None = None) -> Contract:
        """The contract in `directory` (a downloaded bundle), else the one shipped with this package."""
        if directory is not None:
            return cls(Path(directory))
        shipped = resources.files("hmc_client") / "_contract"
        if shipped.joinpath(DOCUMENT).is_file():
            return cls(Path(str(shipped)))
        return cls(_CHECKOUT)  # an editable install in a checkout

    @property
    def schema_versions(self) -> dict[str, list[str]]:
        found: dict[str, set[str]] = {}
        for spec in self.messages.values():
            found.setdefault(spec.dialect, set()).update(spec.schemas)
        return {dialect: sorted(versions) for dialect, versions in found.items()}

    def address(self, operation: str) -> str:
        """The exchange or queue an operation of the document uses (without an environment prefix)."""
        channel = self.document["operations"][operation]["channel"]["$ref"].rsplit("/", 1)[1]
        address: str = self.document["channels"][channel]["address"]
        return address

    def spec(self, dialect: str, message_type: str) -> MessageSpec:
        return self.messages[(dialect, message_type)]

    @functools.cache  # noqa: B019 - a contract lives as long as the program; its XSDs compile once
    def schema(self, file: str) -> etree.XMLSchema:
        return etree.XMLSchema(etree.parse(str(self.directory / file), _parser()))

    def read(self, body: bytes) -> Document:
        """The message parsed and valid against its schema version's XSD; InvalidMessage otherwise."""
        try:
            root = etree.fromstring(body, _parser())
        except etree.XMLSyntaxError as e:
            raise InvalidMessage([Problem("xml.syntax", str(e), line=e.lineno)]) from None
        name = etree.QName(root)
        spec = self.by_root.get((name.namespace or "", name.localname))
        if spec is None:
            raise InvalidMessage(
                [Problem("message.unknown-type", f"<{name.localname}> in '{name.namespace}' is no message type")]
            )
        header = self._header(spec, root)
        version = header.get("schema_version", "")
        if version not in spec.schemas:
            known = ", ".join(spec.schemas)
            raise InvalidMessage(
                [Problem("header.schema-version", f"schema version {version!r} is not one of {known}", value=version)]
            )
        schema = self.schema(spec.schemas[version])
        if not schema.validate(root):
            raise InvalidMessage([Problem("schema", e.message, path=e.path, line=e.line) for e in schema.error_log])
        if header.get("message_type") not in (spec.type, spec.element):
            raise InvalidMessage(
                [Problem("header.message-type", f"the header says {header.get('message_type')}, the root {spec.type}")]
            )
        return Document(spec, root, header)

    def _header(self, spec: MessageSpec, root: etree._Element) -> dict[str, str]:
        header = {}
        for attr, path in self.header_elements[spec.dialect].items():
            found = root.find("/".join(f"{{{spec.namespace}}}{step}" for step in path.split("/")))
            if found is not None and found.text:
                header[attr] = found.text.strip()
        return header


@functools.cache
def _parser() -> etree.XMLParser:
    # No DTD, no entity expansion, no network, no huge trees: what arrives may be hostile.
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
