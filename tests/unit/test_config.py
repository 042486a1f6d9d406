"""Settings come from the environment and an optional TOML file; the environment wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from broker.config import Customer, Settings
from broker.contract.identifiers import IdentifierError


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


BUFFER_TOML = """
[[customers]]
number = "1001"
invoice = true

[[customers.buffer_stores]]
id = "BUF-1001-07"
name = "Buffertförråd Vårdcentralen Norr"
street = "Storgatan 1"
postal_code = "75320"
city = "Uppsala"
orderer_hsa_id = "SE2321000016-P4Q8"
orderer_name = "Anna Lindqvist"
unit_hsa_id = "SE2321000016-7HK2"
articles = [
    { article = "120606", safety_level = 2, refill_quantity = 5 },
    { article = "093303", safety_level = 1, refill_quantity = 3, article_type = "accessory" },
]
"""


def test_buffer_stores_come_from_the_toml_file(tmp_path: Path) -> None:
    config = tmp_path / "hmc.toml"
    config.write_text(BUFFER_TOML, encoding="utf-8")
    customer = Settings.from_env({"HMC_CONFIG": str(config)}).customer("1001")
    assert customer is not None and customer.invoice
    store = customer.buffer_store("BUF-1001-07")
    assert store is not None and store.orderer_hsa_id == "SE2321000016-P4Q8"
    article = store.article("093303")
    assert article is not None and (article.safety_level, article.refill_quantity) == (1, 3)
    assert article.article_type == "accessory" and store.article("999999") is None


def test_invoice_exporters_in_the_configuration_are_refused_with_the_way_to_roles(tmp_path: Path) -> None:
    """Who may export invoice data is an account's role (invoice:CUSTOMER) for the CLI and the console alike:
    a deployment still granting it in the configuration learns so at start, instead of believing it."""
    config = tmp_path / "hmc.toml"
    config.write_text(BUFFER_TOML.replace("invoice = true\n", 'invoice = true\ninvoice_exporters = ["anna"]\n', 1))
    with pytest.raises(ValueError, match=r"customer 1001: invoice_exporters: .*users roles NAME --role invoice:1001"):
        Settings.from_env({"HMC_CONFIG": str(config)})
    with pytest.raises(ValueError, match=r"HMC_INVOICE_EXPORTERS: .*role invoice:CUSTOMER of an account"):
        Settings.from_env({"HMC_CUSTOMERS": "1001:Skåne::invoice", "HMC_INVOICE_EXPORTERS": "1001:anna"})


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ('orderer_hsa_id = "SE2321000016-P4Q8"', 'orderer_hsa_id = "P4Q8"', "orderer_hsa_id"),
        ("safety_level = 2, refill_quantity = 5", "safety_level = 2, refill_quantity = 0", "refill_quantity"),
        ('article = "093303"', 'article = "120606"', "listed twice"),
        ('city = "Uppsala"\n', "", "city is missing"),
    ],
)
def test_a_bad_buffer_store_is_refused_at_start_naming_where(tmp_path: Path, old: str, new: str, error: str) -> None:
    config = tmp_path / "hmc.toml"
    config.write_text(BUFFER_TOML.replace(old, new), encoding="utf-8")
    with pytest.raises(ValueError, match=error) as caught:
        Settings.from_env({"HMC_CONFIG": str(config)})
    assert "BUF-1001-07" in str(caught.value)


@pytest.mark.parametrize(
    ("env", "said"),
    [
        ({"HMC_PARTITION": "4"}, "HMC_PARTITION is not a setting; did you mean HMC_PARTITIONS?"),
        ({"HMC_LOG_LEVL": "DEBUG"}, "did you mean HMC_LOG_LEVEL?"),
        ({"HMC_WIRE_TAP": "ture"}, "HMC_WIRE_TAP: 'ture' is neither true nor false"),
        ({"HMC_BATCH_SIZE": "abc"}, "HMC_BATCH_SIZE: 'abc' is not a whole number"),
        ({"HMC_CONFIRM_TIMEOUT_S": "ten"}, "HMC_CONFIRM_TIMEOUT_S: 'ten' is not a number"),
    ],
)
def test_a_typo_or_a_bad_value_is_refused_by_name(env: dict[str, str], said: str) -> None:
    with pytest.raises(ValueError) as refused:
        Settings.from_env(env)
    assert said in str(refused.value)


def test_variables_of_other_tools_are_left_alone_and_flags_read_both_ways() -> None:
    settings = Settings.from_env({"HMC_REQUIRE_SERVICES": "1", "HMC_TEST_DB_URL": "x", "HMC_WIRE_TAP": "off"})
    assert settings.wire_tap is False
    assert Settings.from_env({"HMC_WIRE_TAP": " Yes "}).wire_tap is True


def test_a_typo_in_the_toml_file_is_refused_with_the_nearest_setting(tmp_path: Path) -> None:
    config = tmp_path / "hmc.toml"
    config.write_text("[broker]\npartitons = 4\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no setting 'partitons'; did you mean 'partitions'"):
        Settings.from_env({"HMC_CONFIG": str(config)})


def test_the_settings_never_show_a_password() -> None:
    settings = Settings(amqp_url="amqp://hmc:s3cret@mq:5672/%2F", db_url="postgresql+psycopg://hmc:pa55@db/hmc")
    shown = repr(settings)
    assert "s3cret" not in shown and "pa55" not in shown
    assert "amqp://hmc:***@mq:5672/%2F" in shown and "postgresql+psycopg://hmc:***@db/hmc" in shown
