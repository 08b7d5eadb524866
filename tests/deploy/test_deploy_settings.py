"""Configuration reference and settings: docs, compose and k8s agree with the settings classes.

The settings classes (``shared.config.PlatformSettings`` and ``services/*/settings.py``) are
the source of truth; see tests/deploy/settings_reference.py.
"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import yaml
from deploy_helpers import REPO_ROOT, by_name, of_kind
from settings_reference import DOC, Setting, attribute_docs, collect

from shared.events.registry import SERVICES

#: Set by the Dockerfile, compose and the Deployments; read by the image's shell command.
IMAGE_ENV = frozenset({"CFP_SERVICE", "CFP_PORT"})
#: Containers in compose that run the platform's image (the others are third-party images).
PLATFORM_CONTAINERS = (*SERVICES, "migrate", "topics")
#: PostgreSQL's default max_connections and its superuser_reserved_connections.
PG_DEFAULT_MAX_CONNECTIONS = 100
PG_RESERVED = 3
#: The max_connections docs/operations.md asks of the production database.
PROD_MAX_CONNECTIONS = 300

SETTINGS = collect()


def known_env() -> frozenset[str]:
    """Every environment variable some settings class reads, plus the image's own."""
    return frozenset(s.env for s in SETTINGS) | IMAGE_ENV


def unknown(names: set[str]) -> set[str]:
    """Return the names no settings class reads (typos, removed settings)."""
    return set(names) - known_env()


def missing_from_docs(text: str, settings: list[Setting]) -> list[str]:
    """Return the settings that have no table row in ``text`` or whose row lacks the default."""
    rows = {
        match[1]: line
        for line in text.splitlines()
        if (match := re.match(r"^\| `([A-Z][A-Z0-9_]*)` \|", line))
    }
    out = []
    for setting in settings:
        row = rows.get(setting.env)
        if row is None:
            out.append(f"{setting.env}: no row")
        elif setting.default not in row:
            out.append(f"{setting.env}: default {setting.default} not in its row")
    return out


def test_every_settings_field_has_a_docstring_entry() -> None:
    # collect() raises SettingsDocError otherwise; check the count against the classes too.
    fields = sum(1 for _ in SETTINGS)
    assert fields >= 50
    assert {s.owner for s in SETTINGS} == {"platform", *SERVICES}


def test_settings_reference_block_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests/deploy/settings_reference.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_settings_field_is_in_operations_md() -> None:
    text = DOC.read_text(encoding="utf-8")
    missing = missing_from_docs(text, SETTINGS)
    assert not missing, "docs/operations.md:\n" + "\n".join(missing)


def test_a_missing_row_or_stale_default_is_reported() -> None:
    text = DOC.read_text(encoding="utf-8")
    without = "\n".join(
        line for line in text.splitlines() if not line.startswith("| `CFP_DB_POOL_SIZE` |")
    )
    assert missing_from_docs(without, SETTINGS) == ["CFP_DB_POOL_SIZE: no row"]
    changed = text.replace(
        "| `TRACKING_SWEEP_BATCH_SIZE` | `500` |", "| `TRACKING_SWEEP_BATCH_SIZE` | `50` |"
    )
    assert missing_from_docs(changed, SETTINGS) == [
        "TRACKING_SWEEP_BATCH_SIZE: default `500` not in its row"
    ]


def test_docstring_parser_expands_sibling_entries() -> None:
    class Example:
        """Example.

        Attributes:
            weight_a / _b: weights, summing to 1.
            plain: one line
                and its continuation with ``code`` | pipe.
        """

    docs = attribute_docs(Example)
    assert docs == {
        "weight_a": "weights, summing to 1.",
        "weight_b": "weights, summing to 1.",
        "plain": "one line and its continuation with `code` \\| pipe.",
    }


def test_unknown_names_are_caught() -> None:
    assert unknown({"CFP_DB_POOL_SIZ", "TRACKING_SWEEP_INTERVAL", "CFP_PORT", "LOG_LEVEL"}) == {
        "CFP_DB_POOL_SIZ",
        "TRACKING_SWEEP_INTERVAL",
    }


def test_compose_sets_only_known_variables(compose: dict[str, Any]) -> None:
    for name in PLATFORM_CONTAINERS:
        bad = unknown(set(compose["services"][name]["environment"]))
        assert not bad, f"compose {name}: {sorted(bad)}"


def test_k8s_sets_only_known_variables(rendered: dict[str, list[dict[str, Any]]]) -> None:
    template = yaml.safe_load(
        (REPO_ROOT / "k8s/base/secret.template.yaml").read_text(encoding="utf-8")
    )
    assert not unknown(set(template["stringData"]))
    for overlay, objects in rendered.items():
        for config in of_kind(objects, "ConfigMap"):
            assert not unknown(set(config["data"])), f"{overlay} {config['metadata']['name']}"
        for secret in of_kind(objects, "Secret"):
            assert not unknown(set(secret["data"])), f"{overlay} {secret['metadata']['name']}"
        for obj in [*of_kind(objects, "Deployment"), *of_kind(objects, "Job")]:
            for container in obj["spec"]["template"]["spec"]["containers"]:
                names = {item["name"] for item in container.get("env", [])}
                assert not unknown(names), f"{overlay} {obj['kind']}/{obj['metadata']['name']}"


def _pool_size(config: dict[str, Any]) -> int:
    return int(config["data"]["CFP_DB_POOL_SIZE"])


def _peak_connections(objects: list[dict[str, Any]]) -> int:
    """Connections at the HPA maxima: pods x (pool + as many overflow), plus the Job's one."""
    (config,) = of_kind(objects, "ConfigMap")
    pods = sum(hpa["spec"]["maxReplicas"] for hpa in of_kind(objects, "HorizontalPodAutoscaler"))
    return pods * 2 * _pool_size(config) + 1


def test_prod_database_connections_fit(rendered: dict[str, list[dict[str, Any]]]) -> None:
    prod = rendered["prod"]
    assert set(by_name(prod, "HorizontalPodAutoscaler")) == set(SERVICES)
    peak = _peak_connections(prod)
    assert peak <= PROD_MAX_CONNECTIONS - PG_RESERVED - 10, peak  # 10: people, exporters
    docs = DOC.read_text(encoding="utf-8")
    assert f"max_connections >= {PROD_MAX_CONNECTIONS}" in docs
    assert f"= {peak - 1} connections" in docs, "update the arithmetic in docs/operations.md"


def test_dev_and_compose_fit_postgres_defaults(
    rendered: dict[str, list[dict[str, Any]]], compose: dict[str, Any]
) -> None:
    budget = PG_DEFAULT_MAX_CONNECTIONS - PG_RESERVED
    assert _peak_connections(rendered["dev"]) <= budget
    value = compose["x-cfp-environment"]["CFP_DB_POOL_SIZE"]
    pool = int(re.fullmatch(r"\$\{CFP_DB_POOL_SIZE:-(\d+)\}", value)[1])
    assert len(SERVICES) * 2 * pool + 1 <= budget


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_pool_size_is_valid_for_the_settings(
    rendered: dict[str, list[dict[str, Any]]], overlay: str
) -> None:
    from shared.config import PlatformSettings

    (config,) = of_kind(rendered[overlay], "ConfigMap")
    settings = PlatformSettings(db_pool_size=_pool_size(config))
    assert settings.db_pool_size == _pool_size(config)
