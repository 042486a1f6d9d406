"""amqps:// with a client certificate that openssl makes (a process of its own, hence here and not in
tests/unit/test_amqp_tls.py)."""

from __future__ import annotations

import ssl

import pytest

from adapters.amqp.connection import tls_options
from broker.config import Settings


def test_amqps_presents_a_client_certificate_when_configured(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The production setting: a SITHS-like function certificate, verified against the region's CA."""
    import subprocess

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
    settings = Settings.from_env(
        {
            "HMC_AMQP_URL": "amqps://hmc-broker@mq.region.example:5671/hmc",
            "HMC_AMQP_CA_FILE": str(cert),
            "HMC_AMQP_CERT_FILE": str(cert),
            "HMC_AMQP_KEY_FILE": str(key),
        }
    )
    options = tls_options(settings)
    assert isinstance(options, dict)
    context = options["context"]
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "websesam-skane"),),)


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
