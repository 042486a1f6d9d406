"""Settings come from the environment and an optional TOML file; the environment wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import Customer, Settings
from broker.validation.identifiers import IdentifierError


def test_environment_configures_the_broker() -> None:
    settings = Settings.from_env(
        {
            "HMC_AMQP_URL": "amqp://u:p@mq:5672/%2F",
            "HMC_DB_URL": "postgresql+psycopg://hmc@db/hmc",
            "HMC_PREFIX": "test.",
            "HMC_QUEUE_TYPE": "quorum",
            "HMC_PARTITIONS": "4",
            "HMC_BATCH_SIZE": "50",
            "HMC_CUSTOMERS": "1001:Region Skåne:websesam-skane:invoice,1002",
        }
    )
    assert (settings.amqp_url, settings.prefix, settings.queue_type, settings.partitions) == (
        "amqp://u:p@mq:5672/%2F",
        "test.",
        "quorum",
        4,
    )
    assert settings.customers == (Customer("1001", "Region Skåne", "websesam-skane", True), Customer("1002"))


def test_a_toml_file_holds_customers_and_the_environment_overrides_it(tmp_path: Path) -> None:
    config = tmp_path / "hmc.toml"
    config.write_text(
        '[broker]\nprefix = "prod."\nbatch_size = 200\n\n'
        '[[customers]]\nnumber = "1001"\nname = "Region Skåne"\namqp_user = "websesam-skane"\ninvoice = true\n',
        encoding="utf-8",
    )
    settings = Settings.from_env({"HMC_CONFIG": str(config), "HMC_BATCH_SIZE": "25"})
    assert settings.prefix == "prod." and settings.batch_size == 25
    assert settings.customer("1001") == Customer("1001", "Region Skåne", "websesam-skane", True)
    assert settings.customer("9999") is None


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"HMC_QUEUE_TYPE": "lazy"}, ValueError),
        ({"HMC_PARTITIONS": "0"}, ValueError),
        ({"HMC_WORKERS": "2", "HMC_WORKER_INDEX": "2"}, ValueError),
        ({"HMC_CUSTOMERS": "12"}, IdentifierError),
        ({"HMC_RESERVE_ID_PATTERNS": "(unclosed"}, IdentifierError),
    ],
)
def test_bad_configuration_is_refused_at_start(env: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error):
        Settings.from_env(env)
