"""amqps:// always verifies the server; a client certificate is presented when configured."""

from __future__ import annotations

import ssl

import pytest

from adapters.amqp.connection import _rotated_past, tls_options
from broker.config import ConfigurationError, Settings


def test_plain_amqp_has_no_tls() -> None:
    assert tls_options(Settings(amqp_url="amqp://guest:guest@127.0.0.1:5672//")) is False


def test_amqps_verifies_the_server_certificate_and_its_name() -> None:
    """As py-amqp takes them (the handshakes themselves: tests/e2e/test_amqp_tls_nodes.py)."""
    options = tls_options(Settings(amqp_url="amqps://broker:secret@mq.region.example:5671/hmc"))
    assert isinstance(options, dict)
    assert options["cert_reqs"] is ssl.CERT_REQUIRED and options["server_hostname"] == "mq.region.example"
    assert options["tls_minimum_version"] is ssl.TLSVersion.TLSv1_2
    assert "ca_certs" not in options, "no CA file configured: the system's CAs"


def test_a_missing_certificate_file_stops_the_start_with_its_setting_and_path(tmp_path) -> None:  # type: ignore[no-untyped-def]
    absent = tmp_path / "absent-ca.pem"
    with pytest.raises(ConfigurationError, match=f"HMC_AMQP_CA_FILE: cannot load {absent}: No such file"):
        tls_options(Settings(amqp_url="amqps://mq/hmc", amqp_ca_file=str(absent)))
    with pytest.raises(ConfigurationError, match="HMC_AMQP_CERT_FILE and HMC_AMQP_KEY_FILE: cannot load"):
        tls_options(Settings(amqp_url="amqps://mq/hmc", amqp_cert_file=str(absent), amqp_key_file=str(absent)))


@pytest.mark.parametrize("url", ["AMQPS://broker@mq.region.example/hmc", " amqps://broker@mq.region.example/hmc"])
def test_tls_is_decided_by_the_parsed_scheme_as_kombu_decides_it(url: str) -> None:
    """An upper-case scheme or a stray space is still amqps to kombu: it must get the verifying options."""
    options = tls_options(Settings(amqp_url=url))
    assert isinstance(options, dict) and options["server_hostname"] == "mq.region.example"


def test_a_lost_tls_node_is_tried_last_on_reconnection() -> None:
    """kombu fills in 5671 for an amqps:// URL without a port: the lost node must still be recognised."""
    urls = ["amqps://u:p@mq1/hmc", "amqps://u:p@mq2/hmc", "amqps://u:p@mq3/hmc"]
    assert _rotated_past(urls, "mq1", 5671) == [urls[1], urls[2], urls[0]]
    assert _rotated_past(["amqp://u:p@mq1/", "amqp://u:p@mq2/"], "mq2", 5672) == ["amqp://u:p@mq1/", "amqp://u:p@mq2/"]


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
