"""Every broker connection to RabbitMQ is made here, so TLS is configured in one place.

Production connects with amqps:// and verifies the server's certificate against HMC_AMQP_CA_FILE; with
HMC_AMQP_CERT_FILE and HMC_AMQP_KEY_FILE the broker presents a client certificate (in Swedish healthcare a
SITHS function certificate), which RabbitMQ can map to the broker's user (EXTERNAL authentication).
Credentials never come from the repository: the URL (with its password) comes from the environment.

A cluster is named by its nodes' URLs `;`-separated (kombu's failover syntax): a connection goes to the first
that answers, and one that reconnects after a loss moves on to the next node (round-robin). With amqps:// each
node's certificate is checked against that node's own name (`_NodeConnection`).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kombu.connection import Connection

from broker.config import ConfigurationError, Settings

log = logging.getLogger(__name__)
T = TypeVar("T")
_warned: set[str] = set()


def tls_options(settings: Settings) -> dict[str, Any] | bool:
    """py-amqp's ssl options: verification is on whenever amqps:// is used; never off silently.

    Options for the context py-amqp makes itself (not an SSLContext, which py-amqp cannot take): the server's
    certificate required and checked against HMC_AMQP_CA_FILE (else the system's CAs) and the node's name
    (`_NodeConnection` sets each node's), TLS 1.2 at least, and the client certificate when configured. TLS is
    decided by the URL's parsed scheme, as kombu decides it (`AMQPS://` is amqps too). The files are loaded once
    here, so that a missing or unreadable one stops the start with its setting and path.
    """
    urls = settings.amqp_urls
    if not urls or urlsplit(urls[0]).scheme.lower() != "amqps":
        return False
    options: dict[str, Any] = {
        "cert_reqs": ssl.CERT_REQUIRED,
        "server_hostname": urlsplit(urls[0]).hostname,
        "tls_minimum_version": ssl.TLSVersion.TLSv1_2,
    }
    check = _loaded(
        "HMC_AMQP_CA_FILE", settings.amqp_ca_file, lambda: ssl.create_default_context(cafile=settings.amqp_ca_file)
    )
    if settings.amqp_ca_file:
        options["ca_certs"] = settings.amqp_ca_file
    cert, key = settings.amqp_cert_file, settings.amqp_key_file
    if cert:
        _loaded("HMC_AMQP_CERT_FILE and HMC_AMQP_KEY_FILE", f"{cert}, {key}", lambda: check.load_cert_chain(cert, key))
        options["certfile"], options["keyfile"] = cert, key
    return options


def _loaded(setting: str, path: str | None, load: Callable[[], T]) -> T:
    try:
        return load()
    except (OSError, ssl.SSLError) as e:
        raise ConfigurationError(f"{setting}: cannot load {path}: {e.strerror or e}") from e


def each_node_once(connection: Connection) -> int:
    """The max_retries of an ensure_connection that tries every node of the URL once, without sleeping: kombu
    moves to the next node after each failure and sleeps only once it has been round them all."""
    return max(len(connection.alt) - 1, 0)


def connect(settings: Settings, *, after: Connection | None = None, **options: Any) -> Connection:
    """A connection to the node(s) of HMC_AMQP_URL; `after` a connection just lost: its node is tried last (it
    is the least likely to answer, and a node that is stopping may hold a new connection until its timeout)."""
    host = settings.plain_amqp_host
    if host is not None and host not in _warned:  # allowed (e.g. compose's private network), never quietly
        _warned.add(host)
        log.warning(
            "AMQP WITHOUT TLS to another host: the password and every message cross the network in clear; "
            "use amqps:// with HMC_AMQP_CA_FILE (and a client certificate) outside a private network",
            extra={"host": host},
        )
    urls = settings.amqp_urls
    if after is not None:
        urls = _rotated_past(urls, after.hostname, after.port)
    return _NodeConnection(";".join(urls), ssl=tls_options(settings), **options)  # type: ignore[no-untyped-call]


class _NodeConnection(Connection):
    """kombu's Connection, checking each node's TLS certificate against that node's name.

    kombu keeps one set of TLS options for all of a URL's nodes, and fills in `server_hostname` (the name the
    certificate must carry) only while it is unset, with the first node it connects to: a failover to the next
    node would check that node's certificate against the first one's name, and fail (or pass for the wrong
    node). Here every connection attempt gets the options with its node's name, as its URL spells it (kombu
    itself connects to 127.0.0.1 for `localhost`, a name no certificate carries).
    """

    def _init_params(self, **params: Any) -> None:  # type: ignore[override]  # kombu passes keywords only
        super()._init_params(**params)  # type: ignore[no-untyped-call]  # every node switched to passes here
        self._node_name = params.get("hostname")

    def _establish_connection(self) -> Any:
        if isinstance(self.ssl, dict) and self._node_name:
            self.ssl = {**self.ssl, "server_hostname": self._node_name}  # a copy: the nodes share the original
        elif self.transport_cls == "amqps" or self.ssl is True:  # fail closed: TLS without our verification
            raise ConfigurationError("amqps:// without the broker's TLS options: refusing an unverified connection")
        return super()._establish_connection()  # type: ignore[no-untyped-call]


def _rotated_past(urls: list[str], host: str | None, port: int | None) -> list[str]:
    """`urls` starting after the one of `host`:`port` (unchanged when none is)."""
    for i, url in enumerate(urls):
        parts = urlsplit(url)
        default = 5671 if parts.scheme.lower() == "amqps" else 5672  # as kombu fills them in
        if (parts.hostname, parts.port or default) == (host, port):
            return urls[i + 1 :] + urls[: i + 1]
    return urls
