"""HMC_AMQP_URL naming a cluster's nodes `;`-separated: each node checked, none shown with its password, a
failed connection moving on to the next node."""

from __future__ import annotations

import pytest
from kombu.connection import Connection

from adapters.amqp.connection import connect, each_node_once
from broker.config import ConfigurationError, Settings, safe_url

NODES = "amqp://hmc:pw1@127.0.0.1:5681/hmc;amqp://hmc:pw2@127.0.0.1:5682/hmc;amqp://hmc:pw3@127.0.0.1:5683/hmc"


def test_the_nodes_in_the_order_they_are_tried() -> None:
    settings = Settings.from_env({"HMC_AMQP_URL": NODES + ";"})
    assert [u.rsplit(":", 1)[-1] for u in settings.amqp_urls] == ["5681/hmc", "5682/hmc", "5683/hmc"]
    assert Settings(amqp_url="amqp://guest:guest@127.0.0.1/").amqp_urls == ["amqp://guest:guest@127.0.0.1/"]


def test_no_node_is_shown_with_its_password() -> None:
    shown = safe_url(NODES)
    assert "pw" not in shown and shown.count(":***@") == 3
    assert "pw" not in repr(Settings.from_env({"HMC_AMQP_URL": NODES}))


def test_a_plain_connection_to_any_other_host_is_recognised() -> None:
    settings = Settings.from_env({"HMC_AMQP_URL": "amqp://u:p@127.0.0.1/;amqp://u:p@mq2.region.example/"})
    assert settings.plain_amqp_host == "mq2.region.example"
    assert Settings.from_env({"HMC_AMQP_URL": NODES}).plain_amqp_host is None


def test_tls_to_several_nodes_is_accepted_and_a_mix_of_tls_and_plain_refused() -> None:
    settings = Settings.from_env({"HMC_AMQP_URL": "amqps://u:p@mq1/;amqps://u:p@mq2/"})
    assert len(settings.amqp_urls) == 2  # each node's certificate is checked against its own name (connection.py)
    with pytest.raises(ConfigurationError, match="every node in one scheme"):
        Settings.from_env({"HMC_AMQP_URL": "amqp://u:p@mq1/;amqps://u:p@mq2/"})


def test_a_config_file_may_not_hold_the_password_of_any_node(tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "hmc.toml"
    config.write_text('[broker]\namqp_url = "amqp://hmc@mq1/hmc;amqp://hmc:secret@mq2/hmc"\n')
    with pytest.raises(ConfigurationError, match="password"):
        Settings.from_env({"HMC_CONFIG": str(config)})


def test_a_reconnect_tries_every_node_once() -> None:
    connection = Connection(NODES)
    assert each_node_once(connection) == 2
    assert each_node_once(Connection("amqp://guest:guest@127.0.0.1:5672//")) == 0
    connection.maybe_switch_next()  # what kombu does after a failed attempt
    assert connection.port == 5682


def test_a_connection_replacing_a_lost_one_tries_the_lost_node_last() -> None:
    settings = Settings.from_env({"HMC_AMQP_URL": NODES})
    first = connect(settings)
    assert first.port == 5681
    second = connect(settings, after=first)
    assert second.port == 5682
    assert [int(u.split(":")[-1].split("/")[0]) for u in second.alt] == [5682, 5683, 5681]
    assert connect(settings, after=second).port == 5683
    single = Settings.from_env({"HMC_AMQP_URL": "amqp://guest:guest@127.0.0.1:5672//"})
    assert connect(single, after=connect(single)).port == 5672
