"""The Python client's amqps:// with a client certificate that openssl makes (a process of its own, hence here
and not in tests/unit/test_amqp_tls.py); the broker's own: tests/e2e/test_amqp_tls_nodes.py."""

from __future__ import annotations

import ssl

import pytest


def test_the_python_client_presents_its_certificate_and_logs_in_as_its_common_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """clients/python: amqps with the customer system's certificate, EXTERNAL when the URL names no user."""
    import subprocess

    import pika
    from hmc_client import Tls
    from hmc_client.client import connection_parameters

    key, cert = tmp_path / "client-key.pem", tmp_path / "client.pem"
    made = subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=websesam-skane"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        capture_output=True,
    )
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-200:]!r}")
    parameters = connection_parameters("amqps://mq.region.example:5671/hmc", Tls(str(cert), str(cert), str(key)))
    assert isinstance(parameters.credentials, pika.credentials.ExternalCredentials)
    assert parameters.ssl_options is not None and parameters.ssl_options.server_hostname == "mq.region.example"
    context = parameters.ssl_options.context
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    with_user = connection_parameters("amqps://websesam-skane:pw@mq.region.example/hmc", Tls(str(cert)))
    assert isinstance(with_user.credentials, pika.PlainCredentials)
