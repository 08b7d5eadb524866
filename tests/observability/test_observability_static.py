"""Static checks of the dashboards and alert rules: promtool, structure, metric names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
METRICS_DOC = ROOT / "docs" / "metrics.md"


def test_promtool_accepts_the_rules() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "Debian package prometheus is required: apt-get install -y prometheus"
    assert RULES
    result = subprocess.run(
        [promtool, "check", "rules", *map(str, RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_are_provisionable() -> None:
    names = {p.name for p in DASHBOARDS}
    assert {
        "cfp-sla-overview.json",
        "cfp-complaint-trends.json",
        "cfp-handling-satisfaction.json",
        "cfp-suggestions.json",
        "cfp-platform-health.json",
    } <= names
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text("utf-8"))
        assert board["uid"] not in uids
        uids.add(board["uid"])
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
            assert panel["description"], (path.name, panel["title"])
            assert panel["targets"], (path.name, panel["title"])
            for t in panel["targets"]:
                assert "$" not in t["expr"], "raw PromQL only: the proof test evaluates it"


def test_every_metric_used_is_documented() -> None:
    doc = METRICS_DOC.read_text("utf-8")
    exprs = [
        t["expr"]
        for p in DASHBOARDS
        for panel in json.loads(p.read_text("utf-8"))["panels"]
        for t in panel["targets"]
    ]
    for path in RULES:
        exprs += [r["expr"] for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    prefixes = ("analytics_", "http_", "events_", "event_", "outbox_", "tracking_")
    used = {
        re.sub(r"_(bucket|sum|count)$", "", token)
        for expr in exprs
        for token in re.findall(r"[a-z_]+", expr)
        if token.startswith(prefixes)
    }
    missing = sorted(m for m in used if f"`{m}" not in doc)
    assert not missing, missing
