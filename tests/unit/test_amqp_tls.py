"""amqps:// always verifies the server; a client certificate is presented when configured."""

from __future__ import annotations

import ssl

from adapters.amqp.connection import tls_options
from broker.config import Settings


def test_plain_amqp_has_no_tls() -> None:
    assert tls_options(Settings(amqp_url="amqp://guest:guest@127.0.0.1:5672//")) is False


def test_amqps_verifies_the_server_certificate_and_its_name() -> None:
    options = tls_options(Settings(amqp_url="amqps://broker:secret@mq.region.example:5671/hmc"))
    assert isinstance(options, dict)
    context = options["context"]
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert options["server_hostname"] == "mq.region.example"
