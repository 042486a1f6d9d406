"""amqps:// as the broker's connections make it, against TLS listeners of the test's own (tests/support/tls.py,
certificates by openssl, hence e2e): the server's certificate is verified, against each node's own name on the
first connection and on every failover and reconnection (kombu alone checked every node against the first
one's), and a configured client certificate is presented. The listeners speak no AMQP after the handshake, so
every connection fails after it: what counts is whether the handshake was accepted."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.amqp.connection import connect
from broker.config import Settings
from tests.support.tls import Node, certificate


def _attempts(settings: Settings, count: int) -> BaseException:
    """`count` connection attempts, kombu moving to the next node after each (round-robin); the error of the last."""
    connection = connect(settings, connect_timeout=3)
    with pytest.raises(Exception) as raised:
        connection.ensure_connection(max_retries=count - 1, interval_start=0, interval_step=0, interval_max=0)
    with contextlib.suppress(Exception):
        connection.release()
    return raised.value


def _causes(error: BaseException | None) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def test_each_node_is_checked_against_its_own_name_on_failover_and_reconnection(tmp_path: Path) -> None:
    first_cert, first_key = certificate(tmp_path, "localhost", "DNS:localhost")
    second_cert, second_key = certificate(tmp_path, "node-b", "IP:127.0.0.2")
    trusted = tmp_path / "ca.pem"  # both self-signed certificates stand for the region's CA
    trusted.write_text(first_cert.read_text() + second_cert.read_text())
    first = Node("127.0.0.1", first_cert, first_key)
    second = Node("127.0.0.2", second_cert, second_key)  # Linux answers on all of 127.0.0.0/8
    try:
        # `localhost` as the URL names it: kombu connects to 127.0.0.1, while the certificate carries localhost.
        url = f"amqps://u:p@localhost:{first.port}/hmc;amqps://u:p@127.0.0.2:{second.port}/hmc"
        _attempts(Settings.from_env({"HMC_AMQP_URL": url, "HMC_AMQP_CA_FILE": str(trusted)}), 3)
    finally:
        first.close()
        second.close()
    assert first.outcomes == [True, True], "the first node, then again after the second: checked as localhost"
    assert second.outcomes == [True], "the second node's certificate, checked against its own address"


def test_a_server_certificate_that_is_not_trusted_or_not_for_the_node_is_refused(tmp_path: Path) -> None:
    cert, key = certificate(tmp_path, "elsewhere", "DNS:mq.elsewhere.example")
    stranger, _ = certificate(tmp_path, "stranger", "DNS:localhost")
    wrong_name = Node("127.0.0.1", cert, key)  # trusted, but for another host
    try:
        url = f"amqps://u:p@localhost:{wrong_name.port}/hmc"
        refused = [
            _attempts(Settings.from_env({"HMC_AMQP_URL": url, "HMC_AMQP_CA_FILE": str(cert)}), 1),
            _attempts(Settings.from_env({"HMC_AMQP_URL": url, "HMC_AMQP_CA_FILE": str(stranger)}), 1),  # untrusted
        ]
    finally:
        wrong_name.close()
    assert wrong_name.outcomes == [False, False]
    reasons = [next((e for e in _causes(r) if isinstance(e, ssl.SSLCertVerificationError)), None) for r in refused]
    assert reasons[0] is not None and "mismatch" in str(reasons[0]), refused[0]  # the broker refused: wrong name
    assert reasons[1] is not None and "certificate verify failed" in str(reasons[1]), refused[1]  # untrusted


def test_amqps_presents_the_configured_client_certificate(tmp_path: Path) -> None:
    """The production setting: a SITHS-like function certificate, which RabbitMQ maps to the broker's user."""
    server_cert, server_key = certificate(tmp_path, "localhost", "DNS:localhost")
    client_cert, client_key = certificate(tmp_path, "hmc-broker-skane")
    node = Node("127.0.0.1", server_cert, server_key, client_ca=client_cert)
    try:
        settings = Settings.from_env(
            {
                "HMC_AMQP_URL": f"amqps://localhost:{node.port}/hmc",
                "HMC_AMQP_CA_FILE": str(server_cert),
                "HMC_AMQP_CERT_FILE": str(client_cert),
                "HMC_AMQP_KEY_FILE": str(client_key),
            }
        )
        _attempts(settings, 1)
    finally:
        node.close()
    assert [(h.accepted, h.client) for h in node.handshakes] == [(True, "hmc-broker-skane")]
