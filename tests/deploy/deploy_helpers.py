"""Shared constants and helpers of the offline deployment checks in tests/deploy.

Nothing here needs Docker or a cluster. Kustomize overlays are rendered with, in order:
``$KUSTOMIZE`` (path to a kustomize binary), ``kustomize`` on ``PATH``, ``~/go/bin/kustomize``,
or ``kubectl kustomize``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
OVERLAYS = ("dev", "prod")

#: Platform-wide environment variables (ARCHITECTURE.md §6, docs/operations.md).
PLATFORM_ENV = frozenset(
    {
        "DATABASE_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_TOPIC_PREFIX",
        "CFP_ENVIRONMENT",
        "CFP_TIMEZONE",
        "CFP_JWT_SECRET",
        "CFP_PSEUDONYM_KEY",
        "CFP_VAULT_KEYS",
        "LOG_LEVEL",
        "CFP_DB_POOL_SIZE",
    }
)
#: The subset that is secret: never a literal in compose or a ConfigMap.
SECRET_ENV = frozenset({"DATABASE_URL", "CFP_JWT_SECRET", "CFP_PSEUDONYM_KEY", "CFP_VAULT_KEYS"})

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def kustomize_command() -> list[str] | None:
    """Return the command prefix that renders a kustomization, or None if none is found."""
    explicit = os.environ.get("KUSTOMIZE")
    if explicit:
        return [explicit, "build"]
    found = shutil.which("kustomize")
    if found:
        return [found, "build"]
    go_bin = Path.home() / "go" / "bin" / "kustomize"
    if go_bin.is_file():
        return [str(go_bin), "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    return None


def render(path: Path) -> list[dict[str, Any]]:
    """Render a kustomization directory into its list of objects."""
    command = kustomize_command()
    if command is None:
        pytest.fail(
            "no kustomize renderer: install one with "
            "`go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0` or provide kubectl"
        )
    result = subprocess.run(
        [*command, str(path)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, f"kustomize build {path} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Return the objects of one kind, in rendered order."""
    return [obj for obj in objects if obj.get("kind") == kind]


def by_name(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """Return the objects of one kind keyed by metadata.name."""
    return {obj["metadata"]["name"]: obj for obj in of_kind(objects, kind)}
