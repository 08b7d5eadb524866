"""docker-compose.yml: Compose Specification schema, interpolation and platform rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from deploy_helpers import PLATFORM_ENV, REPO_ROOT, SCHEMAS, SECRET_ENV

from shared.events.registry import SERVICE_PORTS, SERVICES

#: Secrets compose must require from the caller's environment (never default).
REQUIRED_SECRETS = (
    "POSTGRES_PASSWORD",
    "CFP_JWT_SECRET",
    "CFP_PSEUDONYM_KEY",
    "CFP_VAULT_KEYS",
    "GRAFANA_ADMIN_PASSWORD",
)
ONE_SHOT = ("migrate", "topics")

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariableError(Exception):
    """A ``${VAR:?message}`` variable was unset or empty."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Apply Compose variable interpolation to every string in ``value``.

    Supports ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``,
    ``${VAR?e}``, ``${VAR:+r}`` and ``${VAR+r}`` (the forms the Compose spec defines).
    """
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"] or ""
        is_set = name in env
        is_nonempty = bool(env.get(name))
        present = is_nonempty if op and op.startswith(":") else is_set
        if op in (":-", "-"):
            return env[name] if present else arg
        if op in (":?", "?"):
            if not present:
                raise MissingVariableError(f"{name}: {arg}")
            return env[name]
        if op in (":+", "+"):
            return arg if present else ""
        return env.get(name, "")

    return _VAR.sub(substitute, value)


def full_env() -> dict[str, str]:
    return {name: f"test-{name.lower()}" for name in REQUIRED_SECRETS}


def test_compose_matches_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    # Validate both the file as written and after interpolation (types must still fit).
    for document in (compose, interpolate(compose, full_env())):
        errors = sorted(validator.iter_errors(document), key=lambda e: e.json_path)
        assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_schema_catches_an_invalid_file() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text(encoding="utf-8"))
    bad = {"services": {"x": {"image": "a", "depends_on": {"y": {"condition": "nope"}}}}}
    assert not jsonschema.validators.validator_for(schema)(schema).is_valid(bad)


@pytest.mark.parametrize("secret", REQUIRED_SECRETS)
def test_each_secret_is_required(compose: dict[str, Any], secret: str) -> None:
    text = (REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    uses = re.findall(r"\$\{" + secret + r"([^}]*)\}", text)
    assert uses, f"{secret} is not used"
    assert all(use.startswith(":?") for use in uses), f"{secret} must be ${{{secret}:?...}}"
    env = full_env()
    del env[secret]
    with pytest.raises(MissingVariableError, match=secret):
        interpolate(compose, env)


def test_interpolation_resolves_everything(compose: dict[str, Any]) -> None:
    resolved = interpolate(compose, full_env())
    assert "${" not in yaml.safe_dump(resolved)
    intake_env = resolved["services"]["intake"]["environment"]
    assert intake_env["CFP_ENVIRONMENT"] == "production"
    assert intake_env["DATABASE_URL"].startswith("postgresql+asyncpg://cfp:test-postgres_password@")


def test_no_literal_secrets(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        for key in SECRET_ENV | {"POSTGRES_PASSWORD", "GF_SECURITY_ADMIN_PASSWORD"}:
            if key in env:
                assert "${" in str(env[key]), f"{name}.{key} is a literal"


def test_published_ports_listen_on_loopback_only(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: use the short string syntax"
            assert port.startswith("127.0.0.1:"), f"{name}: {port} is not bound to 127.0.0.1"


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} is a one-shot job"
            continue
        check = service.get("healthcheck")
        assert check, f"{name}: no healthcheck"
        assert check.get("test"), f"{name}: healthcheck without test"
        assert not check.get("disable"), f"{name}: healthcheck disabled"


def test_one_shot_jobs(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["cfp", "migrate"]
    assert services["topics"]["command"] == ["cfp", "topics", "create"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", SERVICES)
def test_platform_service(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    port = SERVICE_PORTS[service]
    assert spec["command"] == ["cfp", "serve", service, "--host", "0.0.0.0", "--port", str(port)]
    assert spec["build"]["args"] == {"SERVICE": service, "PORT": str(port)}
    assert f"127.0.0.1:{port}:{port}" in spec["ports"]
    assert spec["environment"]["CFP_PORT"] == str(port)
    assert set(spec["environment"]) >= PLATFORM_ENV, "platform env vars missing"
    assert "/healthz" in " ".join(spec["healthcheck"]["test"])
    assert spec["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "kafka": {"condition": "service_healthy"},
        "migrate": {"condition": "service_completed_successfully"},
        "topics": {"condition": "service_completed_successfully"},
    }
    assert spec["read_only"] is True
    assert spec["cap_drop"] == ["ALL"]


def test_kafka_is_single_node_kraft_with_volume(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert not kafka["image"].endswith(":latest")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    volume = next(v for v in kafka["volumes"] if v.startswith("kafka-data:"))
    assert volume.split(":")[1] == env["KAFKA_LOG_DIRS"]
    assert "kafka-data" in compose["volumes"]


def test_postgres_16_with_volume(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert re.match(r"^postgres:16(\.\d+)?(-\w+)?$", postgres["image"])
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose["volumes"]


def test_prometheus_and_grafana_mounts(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert (
        "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in (prometheus["volumes"])
    )
    assert "./deploy/prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    grafana = compose["services"]["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    dashboards_mount = next(v for v in grafana["volumes"] if v.startswith("./deploy/grafana/dash"))
    container_path = dashboards_mount.split(":")[1]
    provider = yaml.safe_load(
        (REPO_ROOT / "deploy/grafana/provisioning/dashboards/dashboards.yml").read_text("utf-8")
    )
    assert provider["providers"][0]["options"]["path"] == container_path
    datasource = yaml.safe_load(
        (REPO_ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text("utf-8")
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in prometheus["ports"]


def test_mounted_host_paths_are_in_the_repo(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                path = Path(REPO_ROOT, source)
                # rules/ and dashboards/ are filled in later; their parent must exist.
                assert path.exists() or path.parent.exists(), f"{name}: {source}"
