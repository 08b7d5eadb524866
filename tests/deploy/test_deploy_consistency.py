"""Compose, Kubernetes, Prometheus, the Dockerfile and the topic registry agree."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from deploy_helpers import PLATFORM_ENV, REPO_ROOT, SECRET_ENV, by_name, of_kind

from shared.events.registry import SERVICE_PORTS, SERVICES, all_topics


def test_registry_services_and_ports_agree() -> None:
    assert set(SERVICES) == set(SERVICE_PORTS)


def test_ports_agree_everywhere(
    compose: dict[str, Any],
    rendered: dict[str, list[dict[str, Any]]],
    prometheus_config: dict[str, Any],
) -> None:
    compose_ports = {
        name: int(compose["services"][name]["environment"]["CFP_PORT"]) for name in SERVICES
    }
    assert compose_ports == SERVICE_PORTS
    for overlay, objects in rendered.items():
        k8s_ports = {
            name: svc["spec"]["ports"][0]["port"]
            for name, svc in by_name(objects, "Service").items()
            if name in SERVICES
        }
        assert k8s_ports == SERVICE_PORTS, overlay
        container_ports = {
            name: d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"]
            for name, d in by_name(objects, "Deployment").items()
        }
        assert container_ports == SERVICE_PORTS, overlay
    (job,) = [j for j in prometheus_config["scrape_configs"] if j["job_name"] == "cfp"]
    scraped = {group["labels"]["service"]: group["targets"] for group in job["static_configs"]}
    assert scraped == {name: [f"{name}:{port}"] for name, port in SERVICE_PORTS.items()}


def test_dockerfile_default_port_is_intakes() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG SERVICE=intake" in text
    assert f"ARG PORT={SERVICE_PORTS['intake']}" in text


def test_env_var_names_agree(
    compose: dict[str, Any], rendered: dict[str, list[dict[str, Any]]]
) -> None:
    for name in (*SERVICES, "migrate", "topics"):
        assert set(compose["services"][name]["environment"]) >= PLATFORM_ENV, name
    template = yaml.safe_load(
        (REPO_ROOT / "k8s/base/secret.template.yaml").read_text(encoding="utf-8")
    )
    for overlay, objects in rendered.items():
        (config,) = of_kind(objects, "ConfigMap")
        assert set(config["data"]) | set(template["stringData"]) == PLATFORM_ENV, overlay
        assert not set(config["data"]) & SECRET_ENV, overlay
    for secret in of_kind(rendered["dev"], "Secret"):
        assert set(secret["data"]) <= SECRET_ENV


def test_docs_describe_every_env_var() -> None:
    docs = (REPO_ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in PLATFORM_ENV:
        assert f"`{name}`" in docs, name


def _settings_env_names() -> set[str]:
    """Environment variable names ``shared.config.PlatformSettings`` reads (upper-cased)."""
    from shared import config

    settings_cls = config.PlatformSettings
    prefix = settings_cls.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in settings_cls.model_fields.items():
        alias = field.validation_alias
        choices = getattr(alias, "choices", None)
        if choices:
            names.update(str(choice).upper() for choice in choices if str(choice).isupper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{field_name}".upper())
    return names


def test_settings_code_reads_the_platform_env_vars() -> None:
    missing = PLATFORM_ENV - _settings_env_names()
    assert not missing, f"not read by shared.config.PlatformSettings: {sorted(missing)}"


def test_topic_names_agree(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for overlay, objects in rendered.items():
        names = {t["spec"]["topicName"] for t in of_kind(objects, "KafkaTopic")}
        assert names == set(all_topics()), overlay
        assert {t["metadata"]["name"] for t in of_kind(objects, "KafkaTopic")} == names


def test_kafka_bootstrap_matches_strimzi_cluster(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    for overlay, objects in rendered.items():
        (config,) = of_kind(objects, "ConfigMap")
        (kafka,) = of_kind(objects, "Kafka")
        listener = kafka["spec"]["kafka"]["listeners"][0]
        expected = f"{kafka['metadata']['name']}-kafka-bootstrap:{listener['port']}"
        assert config["data"]["KAFKA_BOOTSTRAP_SERVERS"] == expected, overlay


def test_health_and_metrics_paths_agree(
    compose: dict[str, Any],
    rendered: dict[str, list[dict[str, Any]]],
    prometheus_config: dict[str, Any],
) -> None:
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "/healthz" in dockerfile
    for name in SERVICES:
        assert "/healthz" in " ".join(compose["services"][name]["healthcheck"]["test"])
    (job,) = [j for j in prometheus_config["scrape_configs"] if j["job_name"] == "cfp"]
    assert job["metrics_path"] == "/metrics"
    monitor = by_name(rendered["prod"], "ServiceMonitor")["cfp"]
    assert {e["path"] for e in monitor["spec"]["endpoints"]} == {"/metrics"}
    for objects in rendered.values():
        for deployment in of_kind(objects, "Deployment"):
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_prometheus_loads_the_rules_folder(prometheus_config: dict[str, Any]) -> None:
    assert prometheus_config["rule_files"] == ["rules/*.yml"]


def test_promtool_accepts_the_scrape_config(tmp_path: Path) -> None:
    """promtool (Debian package prometheus) checks the config; rules are checked elsewhere."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/bootstrap.sh installs the Debian package prometheus"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        (REPO_ROOT / "deploy/prometheus/prometheus.yml").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    (tmp_path / "rules").mkdir()
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
