"""Proof of the dashboards and alert rules against a real Prometheus (issue 7, item 5).

Starts the five services as processes on free ports (own database with every service's
migrations, own topic prefix), a real Prometheus (Debian package ``prometheus``) scraping
them every second with the rules of deploy/prometheus/rules/, replays the bundled real CFPB
complaints through intake, then:

- checks the analytics reports against figures computed independently: counts by channel
  and by month (bank time zone) from the replayed file itself, counts by category from
  routing's stored classifications;
- evaluates every PromQL expression of every dashboard panel and every alert rule through
  Prometheus's HTTP API: each must parse, and each panel must return data, except the
  panels listed in :data:`LEGITIMATELY_EMPTY` (docs/metrics.md, "Dashboards", says why).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import math
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import yaml

from shared import devinfra, migrations
from shared.events.registry import SERVICES, all_topics
from shared.replay import read_rows, replay
from shared.runner import ServiceSupervisor, free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample" / "cfpb_complaints_sample.csv"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
TZ = "Asia/Shanghai"

#: (dashboard uid, panel title) -> why it has no data after a replay of new complaints.
LEGITIMATELY_EMPTY = {
    ("cfp-sla-overview", "Resolution time p50 / p90 (working days)"):
        "no complaint is resolved yet: the quantile of an empty histogram is NaN",
    ("cfp-sla-overview", "Provisional calendar years in use"):
        "tracking exposes tracking_calendar_provisional_years (coordinated by name)",
    ("cfp-handling-satisfaction", "Resolution time p50 / p90 (working days)"):
        "no complaint is resolved yet",
    ("cfp-handling-satisfaction", "Acknowledgement time p90"):
        "no case is acknowledged by a person during a replay",
    ("cfp-handling-satisfaction", "Mean acknowledgement time"):
        "no case is acknowledged by a person during a replay (0/0)",
    ("cfp-suggestions", "Adoption rate"): "no suggestion is decided during a replay (0/0)",
    ("cfp-suggestions", "Implementation rate"): "no suggestion is adopted during a replay (0/0)",
    ("cfp-platform-health", "HTTP 5xx per second by service"): "no server error happens",
    ("cfp-platform-health", "Dead-lettered events in the last hour"):
        "no event is dead-lettered: the counter has no series until the first one",
}  # fmt: skip


def panel_queries() -> list[tuple[str, str, str]]:
    """Every (dashboard uid, panel title, expr) of every dashboard."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text("utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                out.append((board["uid"], panel["title"], target["expr"]))
    return out


def rule_queries() -> list[tuple[str, str]]:
    """Every (alert name, expr) of every rule file."""
    out = []
    for path in RULES:
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]:
            for rule in group["rules"]:
                out.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    return out


@pytest.fixture(scope="module")
def isolated_env(server_url: str, kafka_bootstrap: str) -> Iterator[dict[str, str]]:
    """A database with every service's migrations and a topic prefix, both of our own."""
    name = f"cfp_obs_{uuid.uuid4().hex[:8]}"
    url = devinfra.create_database(server_url, name)
    for service in SERVICES:
        migrations.upgrade(service, database_url=url)
    prefix = f"o{uuid.uuid4().hex[:8]}."
    devinfra.create_topics(kafka_bootstrap, all_topics(), prefix=prefix)
    yield {
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "ANALYTICS_METRICS_MIN_INTERVAL_SECONDS": "0",
    }
    devinfra.drop_database(server_url, name)
    devinfra.delete_topics(kafka_bootstrap, prefix=prefix)


@pytest.fixture(scope="module")
def services(
    isolated_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceSupervisor]:
    sup = ServiceSupervisor(
        env=isolated_env,
        ports=dict.fromkeys(SERVICES, 0),
        log_dir=tmp_path_factory.mktemp("obs-service-logs"),
    )
    sup.start()
    try:
        sup.wait_ready(timeout_seconds=120)
        yield sup
    finally:
        sup.stop()


@pytest.fixture(scope="module")
def prometheus(
    services: ServiceSupervisor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Prometheus scraping the five services every second, with our rules loaded."""
    binary = shutil.which("prometheus")
    assert binary, "Debian package prometheus is required: apt-get install -y prometheus"
    work = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in RULES],
        "scrape_configs": [
            {
                "job_name": "cfp",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{services.ports[s]}"], "labels": {"service": s}}
                    for s in SERVICES
                ],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (work / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready"
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
async def replayed(services: ServiceSupervisor, prometheus: str, token_for: Any) -> dict[str, Any]:
    """Replay the bundled sample (newest row today) and wait until analytics has it all.

    All: every complaint received and routed (types total, nothing unclassified) and every
    case opened (handling's open count): the three events reach analytics on different
    topics, so one can lag behind the others on a busy machine.
    """
    rows = read_rows(SAMPLE)
    token = token_for("intake_client")["Authorization"].removeprefix("Bearer ")
    summary = await replay(
        rows,
        intake_url=services.url("intake"),
        token=token,
        rate_per_second=0,
        concurrency=8,
        tz=TZ,
        shift_to_now=True,
    )
    assert summary.accepted == len(rows), summary.rejected
    async with httpx.AsyncClient(
        base_url=services.url("analytics"), headers=token_for("analyst"), timeout=30
    ) as client:
        deadline = time.monotonic() + 180
        while True:
            report = (await client.get("/v1/reports/complaints/types")).json()
            counts = {i["category"]: i["count"] for i in report["items"]}
            handling = (await client.get("/v1/reports/complaints/handling")).json()
            if (
                report["total"] == summary.accepted
                and "unclassified" not in counts
                and handling["open"] == summary.accepted
            ):
                break
            assert time.monotonic() < deadline, (report, handling)
            await asyncio.sleep(1)
    return {"summary": summary, "rows": rows}


async def test_reports_equal_figures_computed_from_the_replayed_file(
    services: ServiceSupervisor, replayed: dict[str, Any], token_for: Any
) -> None:
    summary = replayed["summary"]
    by_channel: dict[str, int] = {}
    by_month: dict[str, int] = {}
    for body in summary.bodies:
        by_channel[body["channel"]] = by_channel.get(body["channel"], 0) + 1
        month = datetime.fromisoformat(body["received_at"]).astimezone(ZoneInfo(TZ))
        by_month[month.strftime("%Y-%m")] = by_month.get(month.strftime("%Y-%m"), 0) + 1
    by_category: dict[str, int] = {}
    async with httpx.AsyncClient(
        base_url=services.url("routing"), headers=token_for("supervisor"), timeout=30
    ) as routing:
        sem = asyncio.Semaphore(8)

        async def category(cid: str) -> str:
            async with sem:
                r = await routing.get(f"/v1/classifications/{cid}")
            assert r.status_code == 200, r.text
            return str(r.json()["category"])

        for cat in await asyncio.gather(*(category(c) for c in summary.accepted_ids)):
            by_category[cat] = by_category.get(cat, 0) + 1

    analyst = token_for("analyst")
    async with httpx.AsyncClient(
        base_url=services.url("analytics"), headers=analyst, timeout=30
    ) as client:
        ch = (await client.get("/v1/reports/complaints/types?dimension=channel")).json()
        assert {i["category"]: i["count"] for i in ch["items"]} == by_channel
        trend = (await client.get("/v1/reports/complaints/trend?granularity=month")).json()
        assert {i["period"]: i["count"] for i in trend["items"]} == by_month
        types = (await client.get("/v1/reports/complaints/types")).json()
        assert {i["category"]: i["count"] for i in types["items"]} == by_category
        csv_text = (
            await client.get(
                "/v1/reports/complaints/trend?granularity=month", headers={"Accept": "text/csv"}
            )
        ).text
        assert {r["period"]: int(r["count"]) for r in csv.DictReader(io.StringIO(csv_text))} == (
            by_month
        )
        handling = (await client.get("/v1/reports/complaints/handling")).json()
        assert handling["complaints"] == summary.accepted
        assert handling["open"] == summary.accepted  # tracking opened a case for each


async def _query(client: httpx.AsyncClient, expr: str) -> dict[str, Any]:
    r = await client.get("/api/v1/query", params={"query": expr})
    return {"http_status": r.status_code, **r.json()}


def _has_data(result: dict[str, Any]) -> bool:
    data = result["data"]
    if data["resultType"] in ("vector", "matrix"):
        values = [
            float(s["value"][1]) if "value" in s else float(s["values"][-1][1])
            for s in data["result"]
        ]
        return any(not math.isnan(v) for v in values)
    return not math.isnan(float(data["result"][1]))


async def test_every_panel_and_rule_expression_evaluates(
    prometheus: str, replayed: dict[str, Any]
) -> None:
    panels = panel_queries()
    rules = rule_queries()
    assert len(panels) >= 30
    assert len(rules) >= 8
    async with httpx.AsyncClient(base_url=prometheus, timeout=30) as client:
        # Wait until Prometheus has scraped the replayed figures, and a few samples more so
        # that rate() and increase() have two points in their windows.
        expected = replayed["summary"].accepted
        deadline = time.monotonic() + 90
        while True:
            r = await _query(client, "sum(max by (channel) (analytics_complaints_received_total))")
            got = r["data"]["result"]
            if got and float(got[0]["value"][1]) == expected:
                break
            assert time.monotonic() < deadline, r
            await asyncio.sleep(1)
        await asyncio.sleep(5)

        empty, failed = [], []
        for uid, title, expr in panels:
            result = await _query(client, expr)
            if result["http_status"] != 200 or result["status"] != "success":
                failed.append((uid, title, expr, result.get("error")))
            elif not _has_data(result):
                empty.append((uid, title))
        for name, expr in rules:
            result = await _query(client, expr)
            if result["http_status"] != 200 or result["status"] != "success":
                failed.append(("rule", name, expr, result.get("error")))
        assert not failed, failed
        assert set(empty) <= set(LEGITIMATELY_EMPTY), sorted(set(empty) - set(LEGITIMATELY_EMPTY))

        loaded = (await client.get("/api/v1/rules")).json()["data"]["groups"]
        names = {rule["name"]: rule for group in loaded for rule in group["rules"]}
        assert set(names) == {n for n, _ in rules}
        assert all(rule["health"] in ("ok", "unknown") for rule in names.values()), names
        targets = (await client.get("/api/v1/targets")).json()["data"]["activeTargets"]
        assert {t["labels"]["service"] for t in targets if t["health"] == "up"} == set(SERVICES)
