"""The compose deployment's files agree with each other and with the broker; no Docker needed.

Checked: every file parses; every hmc_* metric an alert or a dashboard query names is one the broker really
exposes (prometheus_client's registry after importing broker.observability.metrics), with labels it really
has; ports, scrape targets, health checks and URLs agree; every HMC_* variable is one the README documents
and the broker accepts; RabbitMQ permissions give each customer system exactly its own names (checked
against the real topology plan); nothing secret is committed; the Dockerfile builds what pyproject says.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

import broker.observability.metrics as broker_metrics
from adapters.amqp.topology import Names, Topology, TopologySettings, plan
from broker.config import _ENV as SETTINGS_FROM_ENV
from broker.config import Settings
from tests.support.tools import require_promtool

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.tls.yml", "docker-compose.ha.yml")

# ------------------------------------------------------------------------------------------------ loading


@cache
def load_yaml(name: str) -> Any:
    return yaml.safe_load((COMPOSE / name).read_text(encoding="utf-8"))


@cache
def load_json(name: str) -> Any:
    return json.loads((COMPOSE / name).read_text(encoding="utf-8"))


def services() -> dict[str, Any]:
    return load_yaml("docker-compose.yml")["services"]


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            values[key.strip()] = value.strip()
    return values


def env_example() -> dict[str, str]:
    return env_file(COMPOSE / ".env.example")


def is_secret(name: str) -> bool:
    return re.search(r"PASSWORD|SECRET|TOKEN|COOKIE|_KEY$", name) is not None


def filled_env() -> dict[str, str]:
    """compose/.env as an operator fills it in: .env.example with every empty secret set."""
    return {k: v or (f"x{k.lower()}" if is_secret(k) else v) for k, v in env_example().items()}


_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error} and $$."""

    def substitute(m: re.Match[str]) -> str:
        name, op, arg = m.groups()
        got = env.get(name)
        if (op in (":-", ":?") and not got) or (op in ("-", "?") and got is None):
            assert op not in (":?", "?"), f"${{{name}}} is required: {arg}"
            return arg
        return got or ""

    return _REF.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def references(text: str) -> list[tuple[str, str | None]]:
    return [(m.group(1), m.group(2)) for m in _REF.finditer(text)]


def broker_services() -> dict[str, Any]:
    """The services that run the broker image (built from the repository's Dockerfile)."""
    return {name: s for name, s in services().items() if "build" in s}


def workers() -> dict[str, Any]:
    return {name: s for name, s in broker_services().items() if s.get("command", ["run"]) == ["run"]}


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, please"
    return {k: interpolate(str(v), filled_env()) for k, v in env.items()}


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of the service's ./ bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            out[target] = (COMPOSE / source).resolve()
    return out


def named_volumes(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if not source.startswith(".") and not source.startswith("/"):
            out[target] = source
    return out


def host_path(service: dict[str, Any], container_path: str) -> Path:
    for target, source in bind_mounts(service).items():
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not bind-mounted from the repository")


def conf(name: str) -> dict[str, str]:
    """A rabbitmq.conf-style file (sysctl format) as key -> value."""
    out = {}
    for line in (COMPOSE / name).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, sep, value = line.partition("=")
            assert sep and key.strip() and value.strip(), f"{name}: not 'key = value': {line!r}"
            out[key.strip()] = value.strip()
    return out


def readme_settings() -> set[str]:
    """The HMC_* names of the README's configuration table."""
    names: set[str] = set()
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("| `HMC_"):
            names.update(re.findall(r"HMC_[A-Z0-9_]+", line.split("|")[1]))
    assert names, "README.md has no configuration table"
    return names


def test_every_file_parses() -> None:
    for name in [
        "docker-compose.yml",
        "docker-compose.tls.yml",
        "docker-compose.ha.yml",
        "prometheus/prometheus.yml",
        "prometheus/alerts.yml",
        *(str(p.relative_to(COMPOSE)) for p in (COMPOSE / "grafana/provisioning").rglob("*.yml")),
    ]:
        assert isinstance(load_yaml(name), dict), name
    assert load_json("grafana/dashboards/hmc-broker.json")["panels"]
    tomllib.loads((COMPOSE / "hmc-broker.toml").read_text(encoding="utf-8"))
    conf("rabbitmq/rabbitmq.conf")
    conf("rabbitmq/tls.conf")
    conf("rabbitmq/cluster.conf")
    env_example()


# ------------------------------------------------------------------------------------------------ metrics


@cache
def exposition() -> dict[str, frozenset[str]]:
    """Every hmc_* sample name the broker can expose -> its label names."""
    labels = {m._name: m._labelnames for m in vars(broker_metrics).values() if isinstance(m, MetricWrapperBase)}
    suffixes = {
        "counter": ["_total", "_created"],
        "gauge": [""],
        "histogram": ["_bucket", "_count", "_sum", "_created"],
        "summary": ["", "_count", "_sum", "_created"],
        "info": ["_info"],
    }
    out: dict[str, frozenset[str]] = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("hmc_"):
            continue
        names = {family.name + s for s in suffixes[family.type]} | {s.name for s in family.samples}
        for name in names:
            extra = {"le"} if name.endswith("_bucket") else set()
            out[name] = frozenset(labels[family.name]) | extra
    return out


def test_the_exposition_is_the_broker_registry() -> None:
    assert exposition()["hmc_messages_total"] == {"direction", "type", "outcome"}
    assert exposition()["hmc_processing_seconds_bucket"] == {"le"}
    assert "hmc_messages" not in exposition()  # a counter's samples end in _total


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_METRIC = re.compile(r"\bhmc_[a-z0-9_]+")
_SELECTOR = re.compile(r"\b(hmc_[a-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_JOB = re.compile(r'\bjob\s*=\s*"([^"]*)"')


def promql_problems(expr: str, legend: str = "") -> list[str]:
    problems = []
    bare = _STRING.sub('""', expr)
    for open_, close in ("()", "{}", "[]"):
        if bare.count(open_) != bare.count(close):
            problems.append(f"unbalanced {open_}{close}")
    names = set(_METRIC.findall(bare))
    for name in sorted(names - exposition().keys()):
        problems.append(f"{name} is not exposed by the broker (broker/observability/metrics.py)")
    known = set().union(*(exposition().get(n, frozenset()) for n in names)) | {"instance", "job"}
    for name, matchers in _SELECTOR.findall(_STRING.sub(lambda m: "_" * len(m.group()), expr)):
        for label in _MATCHER.findall(matchers):
            if name in exposition() and label not in exposition()[name]:
                problems.append(f"{name} has no label {label!r} (it has {sorted(exposition()[name])})")
    if names:
        for group in _GROUPING.findall(bare):
            for label in filter(None, (g.strip() for g in group.split(","))):
                if label not in known:
                    problems.append(f"grouping by {label!r}, a label none of {sorted(names)} has")
        for label in re.findall(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", legend):
            if label not in known:
                problems.append(f"legend uses {{{{{label}}}}}, a label none of {sorted(names)} has")
    return problems


def test_the_promql_check_finds_what_it_should() -> None:
    assert promql_problems('sum by (direction) (rate(hmc_messages_total{outcome="rejected"}[5m]))') == []
    assert promql_problems("rate(hmc_messages[5m])")  # a counter's family name is not a sample
    assert promql_problems("hmc_no_such_metric")
    assert promql_problems('hmc_parked_messages{partner="sesam2"}')  # label it does not have
    assert promql_problems("sum by (queue) (hmc_outbox_backlog)")
    assert promql_problems("sum(rate(hmc_messages_total[5m])")
    assert promql_problems("max(hmc_queue_messages)", legend="{{partner}}")


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml("prometheus/alerts.yml")["groups"] for r in g["rules"] if "alert" in r]


def dashboard_panels() -> Iterator[dict[str, Any]]:
    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    yield from walk(load_json("grafana/dashboards/hmc-broker.json")["panels"])


def dashboard_targets() -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in dashboard_panels() for t in p.get("targets", [])]


def test_alerts_use_only_metrics_and_labels_the_broker_exposes() -> None:
    problems = {r["alert"]: promql_problems(r["expr"]) for r in alert_rules()}
    assert {k: v for k, v in problems.items() if v} == {}
    assert any(_METRIC.search(r["expr"]) for r in alert_rules())


def test_dashboard_uses_only_metrics_and_labels_the_broker_exposes() -> None:
    problems = {
        f"{title} / {t['refId']}": promql_problems(t["expr"], t.get("legendFormat", ""))
        for title, t in dashboard_targets()
    }
    assert {k: v for k, v in problems.items() if v} == {}


def test_every_alert_tells_the_operator_what_to_do() -> None:
    names = [r["alert"] for r in alert_rules()]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        annotations = rule["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), rule["alert"]
        assert "Outage runbook" in annotations["description"], f"{rule['alert']}: point to the runbook"
        assert annotations.get("runbook_url", "").startswith("README.md#outage-runbook"), rule["alert"]


def test_the_alerts_the_operators_rely_on() -> None:
    rules = {r["alert"]: r for r in alert_rules()}
    expected = {
        "HmcBrokerDown": ('up{job="hmc-broker"} == 0', None),
        "HmcOldestMessageAge": ("hmc_oldest_message_age_seconds", None),
        "HmcParkedMessages": ("hmc_parked_messages", None),
        "HmcSesam2Outage": ('hmc_partner_outage_seconds{partner="sesam2"}', "warning"),
        "HmcReserveRoutine": ('hmc_reserve_routine_active{partner="sesam2"}', "critical"),
        "HmcCustomerSystemOutage": ('hmc_partner_outage_seconds{partner!="sesam2"}', None),
        "HmcRejectionsSpike": ('hmc_messages_total{outcome="rejected"}', None),
        "HmcPublishFailures": ("hmc_publish_failures_total", None),
    }
    for name, (fragment, severity) in expected.items():
        assert name in rules, f"missing alert {name}"
        assert fragment in rules[name]["expr"], f"{name}: expected {fragment!r} in {rules[name]['expr']!r}"
        if severity:
            assert rules[name]["labels"]["severity"] == severity, name
    assert rules["HmcParkedMessages"]["for"] == "10m"
    assert re.search(r">\s*900\b", rules["HmcOldestMessageAge"]["expr"])
    assert re.search(r">\s*900\b", rules["HmcSesam2Outage"]["expr"])
    assert re.search(r"==\s*1\b", rules["HmcReserveRoutine"]["expr"])


def test_alert_thresholds_match_the_broker_outage_levels() -> None:
    """The alerts fire where the broker's outage watch changes level (HMC_OUTAGE_WARN_S, HMC_RESERVE_ROUTINE_S)."""
    configured = {broker_settings(s) for s in workers().values()}
    assert len({(c.outage_warn_s, c.reserve_routine_s) for c in configured}) == 1
    settings = next(iter(configured))
    rules = {r["alert"]: r for r in alert_rules()}
    warn, reserve = int(settings.outage_warn_s), int(settings.reserve_routine_s)
    assert reserve == 4 * 3600
    assert re.search(rf">\s*{warn}\b", rules["HmcSesam2Outage"]["expr"])
    assert re.search(rf">\s*{warn}\b", rules["HmcCustomerSystemOutage"]["expr"])
    sesam2_outage = next(p for p in dashboard_panels() if p["title"] == "SESAM2 outage length")
    steps = [s["value"] for s in sesam2_outage["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert reserve in steps and warn in steps


def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_alerts_link_to_the_readme_outage_runbook() -> None:
    headings = re.findall(r"^#+ (.+)$", (ROOT / "README.md").read_text(encoding="utf-8"), re.MULTILINE)
    runbook = [h for h in headings if h.startswith("Outage runbook")]
    assert runbook, "README.md has no 'Outage runbook' section"
    for rule in alert_rules():
        assert rule["annotations"]["runbook_url"] == f"README.md#{github_anchor(runbook[0])}", rule["alert"]


def test_the_dashboard_shows_the_flow() -> None:
    exprs = [t["expr"] for _, t in dashboard_targets()]
    used = {m for e in exprs for m in _METRIC.findall(_STRING.sub('""', e))}
    assert {
        "hmc_messages_total",
        "hmc_processing_seconds_bucket",
        "hmc_outbox_backlog",
        "hmc_parked_messages",
        "hmc_queue_messages",
        "hmc_oldest_message_age_seconds",
        "hmc_partner_available",
        "hmc_partner_outage_seconds",
        "hmc_reserve_routine_active",
        "hmc_publish_failures_total",
        "hmc_batch_messages_bucket",
    } <= used
    assert any(re.search(r"by \(direction, type\).*hmc_messages_total", e) for e in exprs)
    assert any('outcome="rejected"' in e for e in exprs)
    for q in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({q}," in e and "hmc_processing_seconds_bucket" in e for e in exprs), q
    # The SESAM2 outage panel draws the 4-hour reserve-routine threshold as a line.
    panel = next(
        p
        for p in dashboard_panels()
        if any(
            "hmc_partner_outage_seconds" in t["expr"] and 'partner="sesam2"' in t["expr"] for t in p.get("targets", [])
        )
    )
    defaults = panel["fieldConfig"]["defaults"]
    assert 4 * 3600 in [s["value"] for s in defaults["thresholds"]["steps"]]
    assert defaults["custom"]["thresholdsStyle"]["mode"] in ("line", "line+area", "dashed")
    assert defaults["unit"] == "s"


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = load_json("grafana/dashboards/hmc-broker.json")
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard_panels()]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    datasource_uid = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]["uid"]
    for panel in dashboard_panels():
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys(), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == datasource_uid, panel["title"]
            assert panel["targets"], panel["title"]
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs)), panel["title"]
            for t in panel["targets"]:
                assert t["datasource"]["uid"] == datasource_uid, panel["title"]


def test_jobs_named_in_queries_are_scraped() -> None:
    jobs = {j["job_name"] for j in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}
    exprs = [r["expr"] for r in alert_rules()] + [t["expr"] for _, t in dashboard_targets()]
    assert {job for e in exprs for job in _JOB.findall(e)} <= jobs


def test_promtool_accepts_config_rules_and_dashboard_queries(tmp_path: Path) -> None:
    require_promtool()
    config = (COMPOSE / "prometheus/prometheus.yml").read_text(encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/alerts.yml", str(COMPOSE / "prometheus/alerts.yml")), encoding="utf-8"
    )
    queries = [
        {"record": f"dashboard:query{i}", "expr": t["expr"].replace("$__rate_interval", "1m").replace("$__range", "1h")}
        for i, (_, t) in enumerate(dashboard_targets())
    ]
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": queries}]}))
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "dashboard.yml"]):
        done = subprocess.run(["promtool", *args], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------------------- compose: shape and ports


def test_the_services_are_there() -> None:
    s = services()
    assert s["rabbitmq"]["image"].startswith("rabbitmq:4.3-management"), "a RabbitMQ in community support"
    assert s["postgres"]["image"] == "postgres:16"
    assert {"rabbitmq-definitions", "hmc-init", "prometheus", "grafana"} <= s.keys()
    assert len(workers()) >= 2
    assert "hmc-init" not in workers()
    init = s["hmc-init"]
    assert init["restart"] == "no"
    assert "hmc-broker db upgrade" in " ".join(init["command"]) and "hmc-broker topology" in " ".join(init["command"])


def test_start_order_follows_the_dependencies() -> None:
    s = services()

    def condition(service: str, on: str) -> str:
        return s[service]["depends_on"][on]["condition"]

    assert condition("rabbitmq", "rabbitmq-definitions") == "service_completed_successfully"
    assert condition("hmc-init", "postgres") == "service_healthy"
    assert condition("hmc-init", "rabbitmq") == "service_healthy"
    for name in workers():
        assert condition(name, "hmc-init") == "service_completed_successfully"
    for name in ("rabbitmq", "postgres", *workers()):
        assert s[name]["healthcheck"]["test"], name
    assert "pg_isready" in " ".join(s["postgres"]["healthcheck"]["test"])
    assert named_volumes(s["postgres"]).get("/var/lib/postgresql/data")
    assert named_volumes(s["rabbitmq"]).get("/var/lib/rabbitmq")


def test_every_bind_mount_exists_in_the_repository() -> None:
    for file in COMPOSE_FILES:
        for name, service in load_yaml(file)["services"].items():
            for target, source in bind_mounts(service).items():
                assert source.exists(), f"{file}: {name} mounts {source} at {target}: not in the repository"
                assert COMPOSE in source.parents, f"{name} mounts {source}: outside compose/"


def test_workers_serve_health_and_metrics_on_the_port_prometheus_scrapes() -> None:
    jobs = {j["job_name"]: j for j in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}
    targets = {t for c in jobs["hmc-broker"]["static_configs"] for t in c["targets"]}
    expected = set()
    for name, service in workers().items():
        port = service_env(service)["HMC_HTTP_PORT"]
        expected.add(f"{name}:{port}")
        assert port in [str(p) for p in service.get("expose", [])], f"{name} does not expose {port}"
        check = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{port}/healthz" in check, f"{name}: health check not on HMC_HTTP_PORT {port}"
        assert Settings.from_env({"HMC_HTTP_PORT": port}).http_port == int(port)
    assert targets == expected
    assert jobs["hmc-broker"].get("metrics_path", "/metrics") == "/metrics"


def test_rabbitmq_ports_and_plugins_agree_with_prometheus_and_the_broker() -> None:
    rabbitmq = services()["rabbitmq"]
    settings = conf("rabbitmq/rabbitmq.conf")
    prometheus_port = settings["prometheus.tcp.port"]
    jobs = {j["job_name"]: j for j in load_yaml("prometheus/prometheus.yml")["scrape_configs"]}
    for job in ("rabbitmq", "rabbitmq-queues"):
        assert {t for c in jobs[job]["static_configs"] for t in c["targets"]} == {f"rabbitmq:{prometheus_port}"}
    assert prometheus_port in [str(p) for p in rabbitmq["expose"]]
    assert any(p.endswith(f":{settings['management.tcp.port']}") for p in rabbitmq["ports"])
    plugins_file = host_path(rabbitmq, "/etc/rabbitmq/enabled_plugins").read_text(encoding="utf-8")
    match = re.fullmatch(r"\s*\[([a-z_,\s]*)\]\.\s*", plugins_file)
    assert match, "enabled_plugins is an Erlang list of atoms ending with '.'"
    plugins = {p.strip() for p in match.group(1).split(",")}
    assert {
        "rabbitmq_management",
        "rabbitmq_prometheus",
        "rabbitmq_consistent_hash_exchange",
        "rabbitmq_auth_mechanism_ssl",
    } <= plugins
    # The image reads conf.d/*.conf after its own 10-defaults.conf: ours must sort after it.
    conf_targets = [t for t in bind_mounts(rabbitmq) if t.startswith("/etc/rabbitmq/conf.d/")]
    assert conf_targets and all(Path(t).name > "10-defaults.conf" for t in conf_targets)

    for name, service in broker_services().items():
        url = urlsplit(service_env(service)["HMC_AMQP_URL"])
        assert (url.scheme, url.hostname, str(url.port)) == ("amqp", "rabbitmq", settings["listeners.tcp.default"])
        assert url.path == "/" + make_definitions().VHOST, name
        assert url.username == make_definitions().BROKER_USER, name
        raw = services()[name]["environment"]["HMC_AMQP_URL"]
        assert references(raw)[0][0] == make_definitions().password_variable(url.username), name


def test_the_store_url_matches_postgres() -> None:
    postgres = services()["postgres"]["environment"]
    for name, service in broker_services().items():
        url = urlsplit(service_env(service)["HMC_DB_URL"])
        assert url.scheme == "postgresql+psycopg" and (url.hostname, url.port) == ("postgres", 5432), name
        assert (url.username, url.path) == (postgres["POSTGRES_USER"], "/" + postgres["POSTGRES_DB"]), name
        raw = services()[name]["environment"]["HMC_DB_URL"]
        assert references(raw)[0][0] == references(postgres["POSTGRES_PASSWORD"])[0][0], name


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    grafana = services()["grafana"]
    datasource = load_yaml("grafana/provisioning/datasources/prometheus.yml")["datasources"][0]
    url = urlsplit(datasource["url"])
    assert url.hostname in services() and url.hostname == "prometheus"
    assert any(str(p).endswith(f":{url.port}:{url.port}") for p in services()["prometheus"]["ports"])
    assert host_path(grafana, "/etc/grafana/provisioning/datasources/prometheus.yml").exists()
    provider = load_yaml("grafana/provisioning/dashboards/hmc-broker.yml")["providers"][0]
    dashboards = host_path(grafana, provider["options"]["path"])
    assert (dashboards / "hmc-broker.json").exists()
    assert host_path(grafana, grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).exists()


def test_prometheus_loads_the_alert_rules() -> None:
    prometheus = services()["prometheus"]
    for rule_file in load_yaml("prometheus/prometheus.yml")["rule_files"]:
        assert host_path(prometheus, rule_file) == (COMPOSE / "prometheus/alerts.yml").resolve()
    config = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert host_path(prometheus, config.split("=", 1)[1]) == (COMPOSE / "prometheus/prometheus.yml").resolve()


# ------------------------------------------------------------------------------------------ settings


def test_every_hmc_variable_is_in_the_readme_configuration_table() -> None:
    used = set()
    for file in COMPOSE_FILES:
        text = (COMPOSE / file).read_text(encoding="utf-8")
        used |= {name for name, _ in references(text) if name.startswith("HMC_")}
        for service in load_yaml(file)["services"].values():
            used |= {k for k in service.get("environment", {}) if k.startswith("HMC_")}
    used |= {k for k in env_example() if k.startswith("HMC_")}
    assert {"HMC_AMQP_URL", "HMC_DB_URL", "HMC_CONFIG", "HMC_QUEUE_TYPE", "HMC_HTTP_PORT"} <= used
    assert sorted(used - readme_settings()) == []


def test_every_variable_compose_needs_is_in_env_example() -> None:
    defined = env_example().keys()
    for file in COMPOSE_FILES:
        for name, op in references((COMPOSE / file).read_text(encoding="utf-8")):
            assert name in defined or op in (":-", "-"), f"{file}: ${{{name}}} is neither in .env.example nor defaulted"


def broker_settings(service: dict[str, Any]) -> Settings:
    env = service_env(service)
    env["HMC_CONFIG"] = str(host_path(service, env["HMC_CONFIG"]))
    return Settings.from_env(env)


def test_the_broker_accepts_each_service_configuration() -> None:
    configured = {name: broker_settings(s) for name, s in broker_services().items()}
    for name, settings in configured.items():
        assert settings.queue_type == "quorum", name
        assert settings.amqp_url.startswith("amqp://") and settings.db_url.startswith("postgresql"), name
        assert settings.customers and all(c.amqp_user for c in settings.customers), name
    # Every service declares and consumes the same topology; the workers share out the partitions.
    assert len({(s.prefix, s.partitions, s.queue_type, s.customers) for s in configured.values()}) == 1
    indexes = sorted(configured[name].worker_index for name in workers())
    assert indexes == list(range(configured[next(iter(workers()))].workers))
    assert all(configured[name].workers == len(workers()) for name in workers())
    assert all(configured[name].partitions >= len(workers()) for name in workers())


def test_the_toml_holds_only_settings_the_broker_knows() -> None:
    config = tomllib.loads((COMPOSE / "hmc-broker.toml").read_text(encoding="utf-8"))
    # Settings.with_file ignores an unknown key: a typo would silently change nothing.
    assert set(config["broker"]) <= set(SETTINGS_FROM_ENV) | {"reserve_id_patterns"}
    for service in broker_services().values():
        env = service_env(service)
        for key, value in config["broker"].items():
            if f"HMC_{key.upper()}" in env:
                assert env[f"HMC_{key.upper()}"] == str(value), f"compose and hmc-broker.toml disagree on {key}"
    customers = {c["number"]: c for c in config["customers"]}
    assert customers["1001"]["name"] == "Region Skåne" and customers["1001"]["invoice"] is True
    assert "1002" in customers


# ------------------------------------------------------------------------------- RabbitMQ permissions


@cache
def make_definitions() -> ModuleType:
    path = COMPOSE / "rabbitmq" / "make_definitions.py"
    spec = importlib.util.spec_from_file_location("compose_make_definitions", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def toml_config() -> dict[str, Any]:
    return tomllib.loads((COMPOSE / "hmc-broker.toml").read_text(encoding="utf-8"))


def password_for(user: str) -> str:
    return f"pw-{user}-0123456789"


def definitions(prefix: str = "", **env: str) -> dict[str, Any]:
    md = make_definitions()
    users = [md.ADMIN_USER, md.BROKER_USER, md.SESAM2_USER] + [c["amqp_user"] for c in toml_config()["customers"]]
    passwords = {md.password_variable(u): password_for(u) for u in users}
    return md.build(toml_config(), {**passwords, "HMC_PREFIX": prefix, **env})


def compose_topology(prefix: str) -> Topology:
    """The real topology plan for compose's customers."""
    customers = toml_config()["customers"]
    return plan(
        TopologySettings(
            prefix=prefix,
            queue_type="quorum",
            partitions=2,
            customers=tuple(c["number"] for c in customers),
            invoice_customers=tuple(c["number"] for c in customers if c.get("invoice")),
        )
    )


def contract_names(prefix: str) -> set[str]:
    """Every exchange and queue the broker declares, from the real topology plan."""
    topology = compose_topology(prefix)
    return {e.name for e in topology.exchanges} | {q.name for q in topology.queues}


def all_names(prefix: str) -> set[str]:
    """The contract's names, the default exchange, and names of other environments and other systems."""
    other = "other." if prefix else "test."
    foreign = {other + n for n in contract_names("")} | {"amq.topic", "amq.direct", "other.queue", "hmc", ""}
    foreign |= {f"{prefix}hmc.customer.9999", f"{prefix}hmc.invoice.9999", f"{prefix}hmc.customer.in.x"}
    return contract_names(prefix) | {"amq.default"} | foreign


def allowed(pattern: str, names: set[str]) -> set[str]:
    """What a RabbitMQ permission pattern allows: an unanchored regular-expression search, as RabbitMQ does."""
    return {n for n in names if n and re.search(pattern, n)}


def permissions_of(defs: dict[str, Any], user: str) -> dict[str, str]:
    [p] = [p for p in defs["permissions"] if p["user"] == user]
    assert p["vhost"] == make_definitions().VHOST
    return p


PREFIXES = pytest.mark.parametrize("prefix", ["", "test."])


@PREFIXES
def test_every_queue_but_the_dead_letter_one_dead_letters_to_the_broker_s_exchange(prefix: str) -> None:
    """RabbitMQ 4.x drops a quorum queue's message after 20 deliveries unless the queue dead-letters it: the
    broker's inbound queues do by their arguments, the partners' queues by the definitions' policy."""
    [policy] = definitions(prefix)["policies"]
    names = Names(prefix)
    assert policy["apply-to"] == "queues"
    assert policy["definition"] == {"dead-letter-exchange": names.dead_letter_exchange}
    for queue in compose_topology(prefix).queues:
        by_argument = (queue.queue_arguments or {}).get("x-dead-letter-exchange")
        by_policy = re.search(policy["pattern"], queue.name) is not None
        if queue.name == names.dead_letter_queue:
            assert not by_argument and not by_policy, "the dead-letter queue must not dead-letter to itself"
        else:
            assert (by_argument == names.dead_letter_exchange) != by_policy, queue.name  # one way, not both
    others = [f"other.{names.sesam2_queue}", f"{names.sesam2_queue}.x", f"{prefix}hmc.customer.in"]
    assert not [n for n in others if re.search(policy["pattern"], n)]


@PREFIXES
def test_each_customer_system_writes_only_customer_in_and_reads_only_its_own_queues(prefix: str) -> None:
    defs = definitions(prefix)
    names = all_names(prefix)
    for customer in toml_config()["customers"]:
        user, number = customer["amqp_user"], customer["number"]
        p = permissions_of(defs, user)
        assert allowed(p["configure"], names) == set(), user
        assert allowed(p["write"], names) == {f"{prefix}hmc.customer.in"}, user
        own = {f"{prefix}hmc.customer.{number}"} | ({f"{prefix}hmc.invoice.{number}"} if customer["invoice"] else set())
        assert allowed(p["read"], names) == own, user


@PREFIXES
def test_customer_routing_keys_must_start_with_their_own_customer_number(prefix: str) -> None:
    defs = definitions(prefix)
    numbers = [c["number"] for c in toml_config()["customers"]]
    for customer in toml_config()["customers"]:
        [topic] = [t for t in defs["topic_permissions"] if t["user"] == customer["amqp_user"]]
        assert topic["exchange"] == f"{prefix}hmc.customer.in" and topic["vhost"] == make_definitions().VHOST
        keys = [f"{n}.CustomerOrder" for n in numbers] + [f"{n}0.CustomerOrder" for n in numbers]
        keys += [customer["number"], f"x{customer['number']}.CustomerOrder", "#", "*.CustomerOrder"]
        assert {k for k in keys if re.search(topic["write"], k)} == {f"{customer['number']}.CustomerOrder"}
        assert re.search(topic["read"], "") and not re.search(topic["read"], "1001.x")


@PREFIXES
def test_only_customers_with_invoice_permission_may_read_invoice_data(prefix: str) -> None:
    defs = definitions(prefix)
    md = make_definitions()
    invoice_queues = {n for n in contract_names(prefix) if n.startswith(f"{prefix}hmc.invoice.")}
    assert invoice_queues, "the toml has a customer with invoice = true"
    for queue in invoice_queues | {f"{prefix}hmc.invoice.{c['number']}" for c in toml_config()["customers"]}:
        number = queue.rsplit(".", 1)[1]
        readers = {
            p["user"]
            for p in defs["permissions"]
            if p["user"] not in (md.ADMIN_USER, md.BROKER_USER) and re.search(p["read"], queue)
        }
        entitled = {c["amqp_user"] for c in toml_config()["customers"] if c["number"] == number and c["invoice"]}
        assert readers == entitled, queue


@PREFIXES
def test_sesam2_and_the_broker_have_only_their_own_names(prefix: str) -> None:
    defs = definitions(prefix)
    md = make_definitions()
    names = all_names(prefix)
    sesam2 = permissions_of(defs, md.SESAM2_USER)
    assert allowed(sesam2["configure"], names) == set()
    assert allowed(sesam2["write"], names) == {f"{prefix}hmc.sesam2.in"}
    assert allowed(sesam2["read"], names) == {f"{prefix}sesam2.in"}
    contract = contract_names(prefix)
    broker = permissions_of(defs, md.BROKER_USER)
    assert allowed(broker["configure"], names) >= contract
    assert allowed(broker["read"], names) >= contract
    assert allowed(broker["write"], names) >= contract | {"amq.default"}
    for kind in ("configure", "write", "read"):
        # Nothing of another environment or another system; hmc.customer.9999 is the broker's namespace.
        stray = allowed(broker[kind], names) - contract - {"amq.default"}
        assert all(n.startswith(f"{prefix}hmc.") for n in stray), (kind, stray)
    tags = {u["name"]: u["tags"] for u in defs["users"]}
    assert tags.pop(md.ADMIN_USER) == ["administrator"]
    assert all(t == [] for t in tags.values())


def test_the_vhost_defaults_to_quorum_queues() -> None:
    [vhost] = definitions()["vhosts"]
    assert vhost["name"] == make_definitions().VHOST
    assert vhost["default_queue_type"] == "quorum" == vhost["metadata"]["default_queue_type"]


def test_password_hashes_are_rabbitmq_sha256_and_no_password_is_written() -> None:
    md = make_definitions()
    defs = definitions()
    text = json.dumps(defs)
    for user in defs["users"]:
        password = password_for(user["name"])
        assert password not in text
        raw = base64.b64decode(user["password_hash"])
        salt, digest = raw[:4], raw[4:]
        assert digest == hashlib.sha256(salt + password.encode()).digest(), user["name"]
        assert user["hashing_algorithm"] == md.HASHING_ALGORITHM == "rabbit_password_hashing_sha256"


def test_a_missing_password_stops_the_deployment_and_certificate_users_have_none() -> None:
    md = make_definitions()
    with pytest.raises(md.ConfigError, match="RABBITMQ_PASSWORD_WEBSESAM_SKANE"):
        definitions(RABBITMQ_PASSWORD_WEBSESAM_SKANE="")
    defs = definitions(RABBITMQ_PASSWORD_WEBSESAM_SKANE="", RABBITMQ_CERTIFICATE_USERS="websesam-skane, sesam2")
    hashes = {u["name"]: u["password_hash"] for u in defs["users"]}
    assert hashes["websesam-skane"] == hashes["sesam2"] == ""
    assert hashes["websesam-halland"]
    with pytest.raises(md.ConfigError, match="unknown"):
        definitions(RABBITMQ_CERTIFICATE_USERS="nobody")
    with pytest.raises(md.ConfigError, match="HMC_AMQP_URL"):
        definitions(RABBITMQ_PASSWORD_HMC_BROKER="p@ss/word")


def test_every_customer_needs_its_own_user() -> None:
    md = make_definitions()
    with pytest.raises(md.ConfigError, match="amqp_user"):
        md.build({"customers": [{"number": "1003"}]}, {})
    with pytest.raises(md.ConfigError, match="reserved"):
        md.build({"customers": [{"number": "1003", "amqp_user": "hmc-broker"}]}, {})
    systems = md.customer_systems(
        {"customers": [{"number": "1003", "amqp_user": "m"}, {"number": "1004", "amqp_user": "m", "invoice": True}]}
    )
    assert [(s.user, s.numbers, s.invoice_numbers) for s in systems] == [("m", ["1003", "1004"], ["1004"])]


def test_env_example_names_a_password_for_every_rabbitmq_user() -> None:
    md = make_definitions()
    for user in definitions()["users"]:
        assert md.password_variable(user["name"]) in env_example(), user["name"]


def test_the_generated_file_is_private_and_lands_where_rabbitmq_loads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    md = make_definitions()
    for name, value in filled_env().items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "definitions.json"
    assert md.main(["--config", str(COMPOSE / "hmc-broker.toml"), "--out", str(out)]) == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert {u["name"] for u in json.loads(out.read_text(encoding="utf-8"))["users"]} >= {"websesam-skane"}

    generator, rabbitmq = services()["rabbitmq-definitions"], services()["rabbitmq"]
    args = generator["entrypoint"]
    assert host_path(generator, args[args.index("--config") + 1]) == (COMPOSE / "hmc-broker.toml").resolve()
    assert host_path(generator, args[1]) == (COMPOSE / "rabbitmq/make_definitions.py").resolve()
    written = Path(args[args.index("--out") + 1])
    volume = named_volumes(generator)[str(written.parent)]
    loaded = Path(conf("rabbitmq/rabbitmq.conf")["load_definitions"])
    assert named_volumes(rabbitmq)[str(loaded.parent)] == volume and loaded.name == written.name


# -------------------------------------------------------------------------------------------- console


def test_the_console_runs_from_the_broker_image_on_the_workers_store_and_rabbitmq() -> None:
    console = services()["console"]
    assert console["command"] == ["console"]
    (worker, *_) = workers().values()
    assert (console["image"], console["build"]) == (worker["image"], worker["build"]), "the same image"
    settings, working = broker_settings(console), broker_settings(worker)
    assert (settings.db_url, settings.amqp_url, settings.prefix) == (working.db_url, working.amqp_url, working.prefix)
    assert console["depends_on"]["hmc-init"]["condition"] == "service_completed_successfully"
    assert "console" not in workers(), "the console consumes no queue"


def test_the_image_carries_the_console_s_dependencies() -> None:
    """`hmc-broker console` imports Starlette, uvicorn, Jinja2, argon2 and Authlib: the image installs the
    lock, so every package of the console extra must be in it."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    locked = set(re.findall(r"^([a-z0-9][a-z0-9._-]*)==", (ROOT / "requirements.lock").read_text(encoding="utf-8"),
                            re.MULTILINE))  # fmt: skip
    wanted = {re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in extra["console"]}
    assert wanted and wanted <= locked, f"not in requirements.lock: {wanted - locked}"
    assert any(rest.startswith("console ") for i, rest in dockerfile() if i == "COPY"), "the image copies console/"


def test_the_console_is_configured_from_the_environment_with_its_secret_from_env() -> None:
    console = services()["console"]
    env = service_env(console)
    settings = broker_settings(console)
    assert env["HMC_CONSOLE_HOST"] == "0.0.0.0" and settings.console_host == "0.0.0.0"  # reachable from the host
    port = str(settings.console_port)
    assert port in [str(p) for p in console["expose"]]
    assert [p for p in console["ports"] if str(p).endswith(f":{port}:{port}")], "published on the host"
    assert all(str(p).startswith("${PUBLISH_ADDRESS:-127.0.0.1}:") for p in console["ports"])
    raw = console["environment"]
    assert references(raw["HMC_CONSOLE_SECRET"]) == [("HMC_CONSOLE_SECRET", ":?")]  # required, from .env
    for name in ("HMC_CONSOLE_OIDC_ISSUER", "HMC_CONSOLE_OIDC_CLIENT_ID", "HMC_CONSOLE_OIDC_SECRET"):
        assert references(raw[name]) == [(name, ":-")], name  # empty: local accounts only
        assert name in env_example(), name
    assert settings.console_oidc_issuer is None or settings.console_oidc_issuer == ""


def test_the_console_s_health_check_asks_its_own_port_for_readiness() -> None:
    console = services()["console"]
    port = broker_settings(console).console_port
    check = " ".join(console["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/readyz" in check and "urllib" in check
    # What /readyz answers, up and down, is tested on the app (tests/store/test_console.py).


# ------------------------------------------------------------------------------------------------ TLS


def tls_overlay() -> dict[str, Any]:
    return load_yaml("docker-compose.tls.yml")["services"]


def test_tls_requires_client_certificates_and_maps_them_to_users() -> None:
    tls = conf("rabbitmq/tls.conf")
    assert tls["listeners.ssl.default"] == "5671"
    assert tls["listeners.tcp"] == "none", "with TLS on, no plain AMQP at all"
    assert tls["ssl_options.verify"] == "verify_peer"
    assert tls["ssl_options.fail_if_no_peer_cert"] == "true"
    assert "EXTERNAL" in {v for k, v in tls.items() if k.startswith("auth_mechanisms.")}
    assert tls["ssl_cert_login_from"] in ("common_name", "distinguished_name", "subject_alternative_name")
    versions = {v for k, v in tls.items() if k.startswith("ssl_options.versions.")}
    assert versions and versions <= {"tlsv1.2", "tlsv1.3"}
    overlay = tls_overlay()["rabbitmq"]
    assert any(str(p).endswith("5671:5671") for p in overlay["ports"])
    assert "/etc/rabbitmq/conf.d/30-tls.conf" in bind_mounts(overlay)
    for key in ("ssl_options.cacertfile", "ssl_options.certfile", "ssl_options.keyfile"):
        assert host_path(overlay, tls[key]).parent == (COMPOSE / "certs").resolve(), key


def test_with_tls_the_broker_connects_with_amqps_and_its_certificate() -> None:
    tls = conf("rabbitmq/tls.conf")
    overlay = tls_overlay()
    assert set(broker_services()) <= set(overlay), "every broker service must switch to amqps"
    for name, service in broker_services().items():
        merged = {**service, "environment": {**service["environment"], **overlay[name]["environment"]}}
        merged["volumes"] = service.get("volumes", []) + overlay[name].get("volumes", [])
        env = service_env(merged)
        url = urlsplit(env["HMC_AMQP_URL"])
        assert (url.scheme, url.hostname, str(url.port)) == ("amqps", "rabbitmq", tls["listeners.ssl.default"]), name
        assert url.path == "/" + make_definitions().VHOST and url.username == make_definitions().BROKER_USER, name
        for key in ("HMC_AMQP_CA_FILE", "HMC_AMQP_CERT_FILE", "HMC_AMQP_KEY_FILE"):
            assert host_path(merged, env[key]).parent == (COMPOSE / "certs").resolve(), (name, key)
        settings = broker_settings(merged)
        assert settings.amqp_url.startswith("amqps://") and settings.amqp_cert_file, name


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_dev_certificates_name_the_rabbitmq_user_in_their_cn(tmp_path: Path) -> None:
    script = COMPOSE / "certs/make-dev-certs.sh"
    subprocess.run(["sh", str(script), str(tmp_path), "websesam-skane"], check=True, capture_output=True)
    for name in ("ca.pem", "server.pem", "server-key.pem", "client-websesam-skane.pem"):
        assert (tmp_path / name).exists(), name
    verify = subprocess.run(
        ["openssl", "verify", "-CAfile", "ca.pem", "server.pem", "client-websesam-skane.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    subject = subprocess.run(
        ["openssl", "x509", "-in", "client-websesam-skane.pem", "-noout", "-subject", "-nameopt", "RFC2253"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CN=websesam-skane" in subject
    assert stat.S_IMODE((tmp_path / "client-websesam-skane-key.pem").stat().st_mode) == 0o600


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_dev_certificates_are_the_files_the_tls_overlay_uses(tmp_path: Path) -> None:
    subprocess.run(["sh", str(COMPOSE / "certs/make-dev-certs.sh"), str(tmp_path)], check=True, capture_output=True)
    tls = conf("rabbitmq/tls.conf")
    wanted = {Path(tls[k]).name for k in ("ssl_options.cacertfile", "ssl_options.certfile", "ssl_options.keyfile")}
    for service in tls_overlay().values():
        env = service.get("environment", {})
        wanted |= {Path(v).name for k, v in env.items() if k.endswith("_FILE")}
    assert {p.name for p in tmp_path.iterdir()} >= wanted


# ---------------------------------------------------------------------------------------------- secrets


def git_ignored(rel: str) -> bool:
    """Whether compose/.gitignore keeps compose/<rel> out of git (its rules: last match wins, ! re-includes)."""
    excluded = False
    for rule in (COMPOSE / ".gitignore").read_text(encoding="utf-8").splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        glob = rule.removeprefix("!")
        if Path(rel).match(glob) or Path(rel).name == glob:
            excluded = not rule.startswith("!")
    return excluded


def committed_files() -> list[Path]:
    """The files of compose/ that git would take, and the Docker files at the root."""
    files = sorted(p for p in COMPOSE.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    kept = [p for p in files if not git_ignored(p.relative_to(COMPOSE).as_posix())]
    return [*kept, ROOT / "Dockerfile", ROOT / ".dockerignore"]


_SECRET_ASSIGNMENT = re.compile(
    r"""^[ \t]*(?:-[ \t]*)?(?:export\s+)?["']?"""
    r"""([A-Za-z0-9_.-]*(?:password|passwd|secret|token|pii_key)[A-Za-z0-9_.-]*)["']?"""
    r"""[ \t]*[:=][ \t]*(.*)$""",
    re.IGNORECASE | re.MULTILINE,
)
_URL_CREDENTIALS = re.compile(r"\b[a-z][a-z0-9+.-]*://([^/\s:@]+):(\$\{[^}]*\}|[^@\s/]+)@", re.IGNORECASE)


def test_the_gitignore_keeps_secrets_out() -> None:
    for secret in (".env", "prod.env", "certs/server-key.pem", "certs/ca.pem", "rabbitmq/definitions.json"):
        assert git_ignored(secret), secret
    for kept in (".env.example", "certs/README.md", "certs/make-dev-certs.sh", "docker-compose.yml"):
        assert not git_ignored(kept), kept
        assert (COMPOSE / kept).exists(), kept


def test_no_secret_is_committed() -> None:
    problems = []
    for path in committed_files():
        if path.suffix == ".py":
            continue  # code, not configuration: make_definitions.py reads passwords, holds none
        text = path.read_text(encoding="utf-8")
        if "PRIVATE KEY-----" in text:
            problems.append(f"{path.name}: a private key")
        for name, value in _SECRET_ASSIGNMENT.findall(text):
            value = value.split(" #", 1)[0].strip().strip("\"'")
            if value and not value.startswith(("${", "$(")) and not value.startswith("<"):
                problems.append(f"{path.name}: {name} = {value!r} (use a ${{VAR}} from .env)")
        for user, password in _URL_CREDENTIALS.findall(text):
            if not password.startswith("${"):
                problems.append(f"{path.name}: a password in a URL for {user!r}")
    assert problems == []


def test_the_secret_check_catches_a_literal() -> None:
    assert _SECRET_ASSIGNMENT.findall("    POSTGRES_PASSWORD: hunter2\n")[0][1] == "hunter2"
    assert "hunter2" in _SECRET_ASSIGNMENT.findall('  "password": "hunter2",')[0][1]
    assert _URL_CREDENTIALS.findall("amqp://u:${P:?set P in .env}@mq/") == [("u", "${P:?set P in .env}")]
    assert _URL_CREDENTIALS.findall("amqp://hmc-broker:hunter2@rabbitmq:5672/hmc") == [("hmc-broker", "hunter2")]


# Secrets a deployment may leave unset, and why; each is empty unless set (${NAME:-}), never defaulted.
OPTIONAL_SECRETS = {"HMC_CONSOLE_OIDC_SECRET": "a public OpenID Connect client (code flow with PKCE) has none"}


def test_env_example_leaves_every_secret_empty_and_compose_requires_them() -> None:
    example = env_example()
    secrets = {k for k in example if is_secret(k)}
    assert {"POSTGRES_PASSWORD", "HMC_PII_KEY", "GRAFANA_ADMIN_PASSWORD", "RABBITMQ_PASSWORD_HMC_BROKER",
            "HMC_CONSOLE_SECRET"} <= secrets  # fmt: skip
    assert {k: v for k, v in example.items() if k in secrets and v} == {}
    assert {"POSTGRES_REPLICATION_PASSWORD", "RABBITMQ_ERLANG_COOKIE"} <= secrets  # docker-compose.ha.yml's
    for file in ("docker-compose.yml", "docker-compose.ha.yml"):
        text = (COMPOSE / file).read_text(encoding="utf-8")
        for name, op in references(text):
            if is_secret(name) and name in OPTIONAL_SECRETS:
                optional = f"${{{name}}} is optional: empty unless set (${{{name}:-}}), never a default value"
                assert op == ":-" and not re.search(rf"\$\{{{name}:-[^}}]", text), optional
            elif is_secret(name):
                assert op == ":?", f"{file}: ${{{name}}} must be required (${{{name}:?...}}), never empty or defaulted"


# ---------------------------------------------------------------------------------------------- Docker


def dockerfile() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def test_the_image_is_slim_unprivileged_and_runs_the_broker() -> None:
    lines = dockerfile()
    froms = [rest.split()[0] for i, rest in lines if i == "FROM"]
    assert froms and all(f == "python:3.11-slim" for f in froms)
    user = [rest for i, rest in lines if i == "USER"][-1]
    assert user.split(":")[0] not in ("root", "0")
    assert json.loads(next(rest for i, rest in lines if i == "ENTRYPOINT")) == ["hmc-broker"]
    assert json.loads(next(rest for i, rest in lines if i == "CMD")) == ["run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert "hmc-broker" in scripts
    health = next(rest for i, rest in lines if i == "HEALTHCHECK")
    assert "urllib" in health and "/healthz" in health and "HMC_HTTP_PORT" in health
    installs = [rest for i, rest in lines if i == "RUN" and "pip install" in rest]
    # The dependencies from the hashed lock (tests/unit/test_lock.py checks it against pyproject), then the
    # project's own wheel with no dependencies of its own resolved.
    assert any("--require-hashes --no-deps -r requirements.lock" in r for r in installs)
    assert any(re.search(r"pip install --no-deps /dist/\*\.whl", r) for r in installs)
    assert all("--require-hashes" in r for r in installs if " -r " in r)
    assert not any(re.search(r"\[(dev|test)", r) for r in installs), "no dev or test extras in the image"
    exposed = {rest for i, rest in lines if i == "EXPOSE"}
    ports = {service_env(s)["HMC_HTTP_PORT"] for s in workers().values()}
    assert exposed == ports == {str(Settings().http_port)}


def test_the_build_context_has_what_the_wheel_needs_and_no_secrets() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    needed = {"pyproject.toml", pyproject["project"]["readme"], *wheel["packages"], *wheel.get("force-include", {})}
    copied = set()
    for instruction, rest in dockerfile():
        if instruction == "COPY" and "--from" not in rest:
            copied |= {s.rstrip("/") for s in rest.split()[:-1]}
    assert needed <= copied, f"the Dockerfile does not copy {needed - copied}"
    ignore = [p.strip() for p in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    ignore = [p for p in ignore if p and not p.startswith("#")]
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not any(Path(source).match(p.removeprefix("**/")) for p in ignore), f".dockerignore drops {source}"
    for must in (".git", ".venv", "compose", "**/.env", "**/*.pem", "**/*.key"):
        assert must in ignore, f".dockerignore should exclude {must}"


def test_no_stray_environment_in_the_image() -> None:
    env = " ".join(rest for i, rest in dockerfile() if i in ("ENV", "ARG"))
    assert not re.search(r"PASSWORD|SECRET|PII_KEY|://[^ ]*@", env, re.IGNORECASE)


def test_every_command_an_alert_names_exists() -> None:
    """An operator woken by an alert runs what its text says: each `hmc-broker <command> [<sub>]` must exist."""
    import typer.main

    from broker.cli import LazyCommand, app

    group = typer.main.get_group(app)
    named = set()
    for rule in alert_rules():
        text = " ".join(str(v) for v in rule.get("annotations", {}).values())
        named |= set(re.findall(r"`hmc-broker ([a-z-]+)(?: ([a-z-]+))?", text))
    assert named, "the alerts name no command at all"
    for command, sub in sorted(named):
        assert command in group.commands, f"alerts name `hmc-broker {command}`, which does not exist"
        found = group.commands[command]
        if isinstance(found, LazyCommand):
            found = found.load()
        if sub:
            assert isinstance(found, typer.core.TyperGroup), f"`hmc-broker {command}` has no subcommands"
            assert sub in found.commands, f"alerts name `hmc-broker {command} {sub}`, which does not exist"


def test_alerts_reach_alertmanager_which_routes_critical_ones_to_the_on_call() -> None:
    """Rules alone reach nobody: Prometheus sends them to the Alertmanager service, which routes by severity."""
    compose = load_yaml("docker-compose.yml")
    assert "alertmanager" in compose["services"]
    mounted = " ".join(compose["services"]["alertmanager"]["volumes"])
    assert "./alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml" in mounted
    targets = [t for a in load_yaml("prometheus/prometheus.yml")["alerting"]["alertmanagers"]
               for c in a["static_configs"] for t in c["targets"]]  # fmt: skip
    assert targets == ["alertmanager:9093"]
    config = load_yaml("alertmanager/alertmanager.yml")
    receivers = {r["name"] for r in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    (critical,) = [r for r in config["route"]["routes"] if 'severity="critical"' in r["matchers"]]
    assert critical["receiver"] in receivers
    severities = {rule["labels"]["severity"] for rule in alert_rules()}
    assert severities <= {"critical", "warning"}, "every rule's severity is one the routing knows"


# -------------------------------------------------------------- high availability (docker-compose.ha.yml)


def ha_services() -> dict[str, Any]:
    return load_yaml("docker-compose.ha.yml")["services"]


def ha_rabbitmq_nodes() -> dict[str, Any]:
    return {name: s for name, s in ha_services().items() if str(s.get("image", "")).startswith("rabbitmq:")}


def ha_broker_services() -> dict[str, Any]:
    return {name: s for name, s in ha_services().items() if "build" in s}


def ha_workers() -> dict[str, Any]:
    return {name: s for name, s in ha_broker_services().items() if s.get("command", ["run"]) == ["run"]}


def test_ha_rabbitmq_is_three_nodes_of_one_cluster_with_one_cookie() -> None:
    nodes = ha_rabbitmq_nodes()
    assert len(nodes) == 3
    assert all(s["image"] == services()["rabbitmq"]["image"] for s in nodes.values()), "the same RabbitMQ"
    cluster = conf("rabbitmq/cluster.conf")
    assert cluster["cluster_formation.peer_discovery_backend"] == "classic_config"
    listed = {v for k, v in cluster.items() if k.startswith("cluster_formation.classic_config.nodes.")}
    assert listed == {f"rabbit@{s['hostname']}" for s in nodes.values()}, "peer discovery names every node"
    assert cluster["cluster_partition_handling"] == "pause_minority"
    assert set(cluster).isdisjoint(conf("rabbitmq/rabbitmq.conf")), "cluster.conf adds, overrides nothing"
    data = set()
    for name, node in nodes.items():
        env = node["environment"]
        assert [n for n, _ in references(env["ERLANG_COOKIE"])] == ["RABBITMQ_ERLANG_COOKIE"], name
        assert env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"].startswith("-setcookie ${RABBITMQ_ERLANG_COOKIE:?"), name
        assert "--erlang-cookie" in " ".join(node["healthcheck"]["test"]), f"{name}: its CLI needs the cookie too"
        assert host_path(node, "/etc/rabbitmq/conf.d/20-hmc.conf") == (COMPOSE / "rabbitmq/rabbitmq.conf").resolve()
        assert host_path(node, "/etc/rabbitmq/conf.d/30-cluster.conf") == (COMPOSE / "rabbitmq/cluster.conf").resolve()
        assert named_volumes(node)["/etc/rabbitmq/definitions"] == "rabbitmq-definitions", name
        data.add(named_volumes(node)["/var/lib/rabbitmq"])
        assert node["depends_on"]["rabbitmq-definitions"]["condition"] == "service_completed_successfully"
    assert len(data) == 3, "each node its own data volume"


def test_ha_postgres_is_a_primary_with_a_synchronous_standby_on_a_slot() -> None:
    s = ha_services()
    primary, standby = s["postgres-primary"], s["postgres-standby"]
    init_path = host_path(primary, "/docker-entrypoint-initdb.d/10-replication.sh")
    entry_path = host_path(standby, standby["entrypoint"][0])
    init, entry = init_path.read_text(encoding="utf-8"), entry_path.read_text(encoding="utf-8")
    assert all(p.stat().st_mode & stat.S_IXUSR for p in (init_path, entry_path)), "the scripts are executable"
    slot = re.search(r"pg_create_physical_replication_slot\('([^']+)'\)", init)
    assert slot and f"-S {slot.group(1)}" in entry, "the standby streams from the slot the primary made"
    assert re.search(r"pg_basebackup .*-h postgres-primary .*-U replicator .* -R ", entry)
    assert "CREATE ROLE replicator WITH REPLICATION" in init and "host replication replicator" in init
    name = re.search(r"cluster_name=(\w+)", entry)
    sync = re.search(r"synchronous_standby_names = '([^']+)'", init)
    assert name and sync and re.search(rf"\b{name.group(1)}\b", sync.group(1)), "the primary waits for the standby"
    assert standby["user"] == "postgres" and standby["depends_on"]["postgres-primary"]["condition"] == "service_healthy"
    for server in (primary, standby):
        raw = server["environment"]["POSTGRES_REPLICATION_PASSWORD"]
        assert references(raw) == [("POSTGRES_REPLICATION_PASSWORD", ":?")]
        assert "pg_isready" in " ".join(server["healthcheck"]["test"])
    assert named_volumes(primary)["/var/lib/postgresql/data"] != named_volumes(standby)["/var/lib/postgresql/data"]
    assert primary["image"] == standby["image"] == services()["postgres"]["image"]


def test_ha_broker_names_every_rabbitmq_node_and_both_postgres_servers() -> None:
    from sqlalchemy import make_url

    from broker.store.db import make_engine

    nodes = {s["hostname"] for s in ha_rabbitmq_nodes().values()}
    postgres = ha_services()["postgres-primary"]["environment"]
    first_nodes = []
    for name, service in ha_broker_services().items():
        env = service_env(service)
        urls = [urlsplit(u) for u in env["HMC_AMQP_URL"].split(";")]
        assert sorted(u.hostname or "" for u in urls) == sorted(nodes), f"{name}: every node once"
        assert {(u.scheme, u.port, u.path, u.username) for u in urls} == {
            ("amqp", 5672, "/" + make_definitions().VHOST, make_definitions().BROKER_USER)
        }, name
        if name in ha_workers():
            first_nodes.append(urls[0].hostname)
        # What libpq gets, through SQLAlchemy and psycopg: both hosts, the one that takes writes.
        url = env["HMC_DB_URL"]
        engine = make_engine(url)
        _, params = engine.dialect.create_connect_args(make_url(url))
        engine.dispose()
        assert params["host"] == "postgres-primary,postgres-standby" and params["port"] == "5432,5432", name
        assert params["target_session_attrs"] == "read-write", name
        assert (params["user"], params["dbname"]) == (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]), name
    assert sorted(first_nodes) == sorted(nodes), "the workers' connections spread over the nodes"
    configured = {name: broker_settings(s) for name, s in ha_broker_services().items()}
    assert all(c.queue_type == "quorum" for c in configured.values())
    assert len({(c.prefix, c.partitions, c.queue_type, c.customers) for c in configured.values()}) == 1
    assert sorted(configured[n].worker_index for n in ha_workers()) == list(range(len(ha_workers())))
    assert all(configured[n].workers == len(ha_workers()) <= configured[n].partitions for n in ha_workers())


def test_ha_start_order_waits_for_the_cluster_and_the_standby() -> None:
    s = ha_services()
    init = s["hmc-init"]
    assert "hmc-broker db upgrade" in " ".join(init["command"]) and "hmc-broker topology" in " ".join(init["command"])
    # With synchronous replication the migration's commits wait for the standby: it must be streaming.
    needed = {*ha_rabbitmq_nodes(), "postgres-primary", "postgres-standby"}
    assert {k for k, v in init["depends_on"].items() if v["condition"] == "service_healthy"} == needed
    for name in ha_workers():
        assert s[name]["depends_on"]["hmc-init"]["condition"] == "service_completed_successfully"
        assert s[name]["stop_grace_period"] and s[name]["healthcheck"]["test"], name


def test_the_systemd_template_runs_one_worker_per_instance_and_stops_it_gracefully() -> None:
    unit: dict[str, list[str]] = {}
    for line in (COMPOSE / "systemd/hmc-broker-worker@.service").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            unit.setdefault(key, []).append(value)
    assert unit["ExecStart"] == ["/opt/hmc-broker/current/bin/hmc-broker run"]
    environment = dict(v.split("=", 1) for v in unit["Environment"])
    assert environment["HMC_WORKER_INDEX"] == "%i", "the instance name is the worker's index"
    assert set(environment) <= readme_settings()
    assert unit["KillSignal"] == ["SIGTERM"] and int(unit["TimeoutStopSec"][0]) >= 30, "the batch is finished"
    assert unit["Restart"] == ["always"] and unit["User"] == ["hmc-broker"]
    text = (COMPOSE / "systemd/hmc-broker-worker@.service").read_text(encoding="utf-8")
    assert set(re.findall(r"HMC_[A-Z0-9_]+", text)) <= readme_settings()
