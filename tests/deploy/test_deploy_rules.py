"""Alert rules: promtool on every rule file, rule unit tests, the same rules in Kubernetes."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from deploy_helpers import REPO_ROOT, by_name, of_kind

RULES_DIR = REPO_ROOT / "deploy" / "prometheus" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
RULE_TESTS = sorted((Path(__file__).resolve().parent / "rule_tests").glob("*.test.yml"))


def _promtool() -> str:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/bootstrap.sh installs the Debian package prometheus"
    return promtool


def _generator() -> ModuleType:
    path = REPO_ROOT / "k8s" / "generate_rules.py"
    spec = importlib.util.spec_from_file_location("cfp_generate_rules", path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _groups(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]


def test_promtool_checks_every_rule_file() -> None:
    assert len(RULE_FILES) >= 2
    result = subprocess.run(
        [_promtool(), "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_rule_unit_tests(test_file: Path) -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", test_file.name],
        capture_output=True,
        text=True,
        check=False,
        cwd=test_file.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_exist_for_the_deploy_rules() -> None:
    tested = {
        (test_file.parent / rule_file).resolve()
        for test_file in RULE_TESTS
        for rule_file in yaml.safe_load(test_file.read_text(encoding="utf-8"))["rule_files"]
    }
    assert RULES_DIR / "cfp-platform.yml" in tested


def test_sweep_lag_alert() -> None:
    rules = {r["alert"]: r for g in _groups(RULES_DIR / "cfp-platform.yml") for r in g["rules"]}
    lag = rules["CfpSlaSweepLagging"]
    assert lag["expr"] == 'max(tracking_sla_sweep_lag_seconds{job="cfp"}) > 120'
    assert lag["for"] == "5m"
    assert "CfpSlaSweepStalled" in rules


def test_alert_names_are_unique() -> None:
    names = [r["alert"] for path in RULE_FILES for g in _groups(path) for r in g["rules"]]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_rule_generator_output_is_current() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "k8s" / "generate_rules.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_rule_generator_check_fails_on_a_stale_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = _generator()
    stale = tmp_path / "prometheus-rules.yaml"
    current = generator.render()
    monkeypatch.setattr(generator, "OUTPUT", stale)
    for text in ("", current.replace("> 120", "> 300")):
        stale.write_text(text, encoding="utf-8")
        assert generator.main(["--check"]) == 1
    stale.write_text(current, encoding="utf-8")
    assert generator.main(["--check"]) == 0


def test_rule_generator_refuses_repeated_group_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = _generator()
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "groups:\n"
        "  - {name: a, rules: [{alert: X, expr: up == 0}]}\n"
        "  - {name: a, rules: [{alert: Y, expr: up == 0}]}\n",
        encoding="utf-8",
    )
    with pytest.raises(generator.RuleFileError, match="repeated"):
        generator.load_groups(bad)


def test_cluster_carries_the_same_rules(rendered: dict[str, list[dict[str, Any]]]) -> None:
    resources = by_name(rendered["prod"], "PrometheusRule")
    assert set(resources) == {path.stem for path in RULE_FILES}
    for path in RULE_FILES:
        resource = resources[path.stem]
        assert resource["spec"]["groups"] == _groups(path), path.name
        assert resource["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert not of_kind(rendered["dev"], "PrometheusRule"), "dev has no Prometheus Operator"


def test_promtool_checks_the_rendered_prometheus_rules(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    files = []
    for resource in of_kind(rendered["prod"], "PrometheusRule"):
        path = tmp_path / f"{resource['metadata']['name']}.yml"
        path.write_text(yaml.safe_dump({"groups": resource["spec"]["groups"]}), encoding="utf-8")
        files.append(str(path))
    assert files
    result = subprocess.run(
        [_promtool(), "check", "rules", *files], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_select_jobs_that_exist(
    rendered: dict[str, list[dict[str, Any]]], prometheus_config: dict[str, Any]
) -> None:
    """A ``job="..."`` selector must match a compose scrape job and the ServiceMonitor's job."""
    compose_jobs = {job["job_name"] for job in prometheus_config["scrape_configs"]}
    monitor = by_name(rendered["prod"], "ServiceMonitor")["cfp"]
    k8s_jobs = {
        relabel["replacement"]
        for endpoint in monitor["spec"]["endpoints"]
        for relabel in endpoint.get("relabelings", [])
        if relabel.get("targetLabel") == "job"
    }
    used = {
        match
        for path in RULE_FILES
        for group in _groups(path)
        for rule in group["rules"]
        for match in re.findall(r'\bjob\s*=\s*"([^"]+)"', str(rule["expr"]))
    }
    assert used == {"cfp"}
    assert used <= compose_jobs
    assert used == k8s_jobs
