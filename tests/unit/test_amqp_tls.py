"""amqps:// always verifies the server; a client certificate is presented when configured."""

from __future__ import annotations

import ssl

import pytest

from adapters.amqp.connection import tls_options
from broker.config import Settings


def test_plain_amqp_has_no_tls() -> None:
    assert tls_options(Settings(amqp_url="amqp://guest:guest@127.0.0.1:5672//")) is False


def test_amqps_verifies_the_server_certificate_and_its_name() -> None:
    """As py-amqp takes them (the handshakes themselves: tests/e2e/test_amqp_tls_nodes.py)."""
    options = tls_options(Settings(amqp_url="amqps://broker:secret@mq.region.example:5671/hmc"))
    assert isinstance(options, dict)
    assert options["cert_reqs"] is ssl.CERT_REQUIRED and options["server_hostname"] == "mq.region.example"
    assert options["tls_minimum_version"] is ssl.TLSVersion.TLSv1_2
    assert "ca_certs" not in options, "no CA file configured: the system's CAs"


def test_a_missing_certificate_file_stops_the_start_with_its_name(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(amqp_url="amqps://mq/hmc", amqp_ca_file=str(tmp_path / "absent-ca.pem"))
    with pytest.raises(OSError, match="No such file"):
        tls_options(settings)


@pytest.mark.parametrize(
    "url", ["amqp://u:p@mq.region.example:5672/hmc", "amqp://u:p@10.0.0.5/hmc", "amqp://rabbitmq/"]
)
def test_plain_amqp_to_another_host_is_recognised(url: str) -> None:
    assert Settings.from_env({"HMC_AMQP_URL": url}).plain_amqp_host


@pytest.mark.parametrize(
    "url",
    ["amqp://guest:guest@127.0.0.1:5672/%2F", "amqp://localhost", "amqp://[::1]:5672/", "memory://", "amqps://mq/"],
)
def test_plain_amqp_on_this_machine_and_tls_are_not_warned_about(url: str) -> None:
    assert Settings.from_env({"HMC_AMQP_URL": url}).plain_amqp_host is None


def test_plain_amqp_to_another_host_is_warned_about_loudly(caplog: pytest.LogCaptureFixture) -> None:
    from adapters.amqp import connection

    settings = Settings.from_env({"HMC_AMQP_URL": "amqp://u:p@mq.example:5672/hmc"})
    connection._warned.discard("mq.example")
    with caplog.at_level("WARNING"):
        connection.connect(settings).release()  # kombu connects lazily: nothing is opened
    (warning,) = [r for r in caplog.records if "WITHOUT TLS" in r.getMessage()]
    assert warning.levelname == "WARNING" and "u:p" not in warning.getMessage()


def test_a_config_file_may_not_hold_a_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "hmc.toml"
    config.write_text('[broker]\namqp_url = "amqps://hmc-broker:hunter2@mq/hmc"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="credentials come only from the environment"):
        Settings.from_env({"HMC_CONFIG": str(config)})
    config.write_text('[broker]\namqp_url = "amqps://hmc-broker@mq/hmc"\n', encoding="utf-8")
    assert Settings.from_env({"HMC_CONFIG": str(config)}).amqp_url == "amqps://hmc-broker@mq/hmc"
