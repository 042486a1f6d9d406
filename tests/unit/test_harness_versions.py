"""`hmc-broker inject` writes each customer's messages in the customer dialect's version it is configured for,
or the one --schema-version names (adapters/harness/cli.py, _versions); on RabbitMQ: tests/amqp/test_harness_cli.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from adapters.harness.cli import _versions


@pytest.fixture(autouse=True)
def _no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HMC_CONFIG", "HMC_CUSTOMERS"):
        monkeypatch.delenv(name, raising=False)


def test_without_configuration_every_customer_writes_1_0() -> None:
    assert _versions("1001,1002", ["1001", "1002"], None) == {"1001": "1.0", "1002": "1.0"}


def test_the_configured_version_of_each_customer_is_written(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HMC_CUSTOMERS", "1001:Region Skåne:websesam-skane:invoice:1.1,1002:Region Halland")
    assert _versions(None, ["1001", "1002"], None) == {"1001": "1.1", "1002": "1.0"}
    assert _versions("1001", ["1001"], None) == {"1001": "1.1"}  # plain numbers: looked up in the configuration
    monkeypatch.delenv("HMC_CUSTOMERS")
    config = tmp_path / "hmc.toml"
    config.write_text('[[customers]]\nnumber = "2040"\nschema_version = "1.1"\n', encoding="utf-8")
    monkeypatch.setenv("HMC_CONFIG", str(config))
    assert _versions("2040,1001", ["2040", "1001"], None) == {"2040": "1.1", "1001": "1.0"}


def test_a_version_in_the_customers_option_or_schema_version_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HMC_CUSTOMERS", "1001::::1.1,1002")
    assert _versions("1001::::1.0,1002::::1.1", ["1001", "1002"], None) == {"1001": "1.0", "1002": "1.1"}
    assert _versions(None, ["1001", "1002"], "1.1") == {"1001": "1.1", "1002": "1.1"}
    assert _versions(None, ["1001", "1002"], "1.0") == {"1001": "1.0", "1002": "1.0"}


@pytest.mark.parametrize(("spec", "option"), [("1001", "2.0"), ("1001::::1.7", None)])
def test_a_version_the_dialect_does_not_have_is_refused(spec: str, option: str | None) -> None:
    with pytest.raises(typer.Exit):
        _versions(spec, ["1001"], option)
