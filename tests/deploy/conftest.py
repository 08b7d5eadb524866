"""Fixtures for the offline deployment checks (compose, Kubernetes, Dockerfile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import OVERLAYS, REPO_ROOT, render


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    with (REPO_ROOT / "docker-compose.yml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Every overlay rendered once per session: ``{"dev": [...], "prod": [...]}``."""
    return {name: render(REPO_ROOT / "k8s" / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def prometheus_config() -> dict[str, Any]:
    path = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml"
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
