"""End to end: the five services as separate processes on real PostgreSQL and Kafka.

Replays the bundled real CFPB complaints through intake and checks that every accepted
complaint reaches a case in tracking with the due date of ARCHITECTURE.md §4, and that
analytics counts exactly what intake accepted.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from shared.replay import read_rows, replay
from shared.runner import ServiceSupervisor
from shared.workcalendar import WorkingDayCalendar

pytestmark = pytest.mark.e2e
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample" / "cfpb_complaints_sample.csv"


async def _wait_for_cases(
    client: httpx.AsyncClient, expected: int, timeout: float = 180.0
) -> dict[str, dict]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    cases: dict[str, dict] = {}
    while loop.time() < deadline:
        cases = {}
        offset = 0
        while True:
            r = await client.get("/v1/cases", params={"limit": 500, "offset": offset})
            assert r.status_code == 200, r.text
            page = r.json()
            cases.update({c["id"]: c for c in page["items"]})
            offset += len(page["items"])
            if offset >= page["total"] or not page["items"]:
                break
        if len(cases) >= expected:
            return cases
        await asyncio.sleep(1.0)
    return cases


async def test_replayed_complaints_reach_cases_with_due_dates_and_analytics(
    services: ServiceSupervisor, token_for
) -> None:
    rows = read_rows(SAMPLE)
    assert len(rows) >= 200
    analyst = token_for("analyst")
    # Other end-to-end tests share these services: compare against what was there before.
    async with httpx.AsyncClient(
        base_url=services.url("analytics"), headers=analyst, timeout=30
    ) as a:
        before = (await a.get("/v1/reports/complaints/types")).json()
    before_counts = {i["category"]: i["count"] for i in before["items"]}
    assert "unclassified" not in before_counts
    token = token_for("intake_client")["Authorization"].removeprefix("Bearer ")
    summary = await replay(
        rows, intake_url=services.url("intake"), token=token, rate_per_second=0, concurrency=8
    )
    assert summary.sent == len(rows)
    assert not summary.rejected, summary.rejected
    assert summary.accepted == len(rows)

    staff = token_for("supervisor")
    async with httpx.AsyncClient(
        base_url=services.url("tracking"), headers=staff, timeout=30
    ) as tracking:
        cases = await _wait_for_cases(tracking, summary.accepted + before["total"])
    assert set(summary.accepted_ids) <= set(cases)
    assert len(cases) == summary.accepted + before["total"]

    calendar = WorkingDayCalendar(tz="Asia/Shanghai")
    for complaint_id, body in zip(summary.accepted_ids, summary.bodies, strict=True):
        case = cases[complaint_id]
        received = datetime.fromisoformat(body["received_at"])
        expected = calendar.deadline(received, 5)
        assert case["due_date"] == expected.due_date.isoformat(), (
            complaint_id,
            body["received_at"],
        )
        assert datetime.fromisoformat(case["due_at"]) == expected.due_at
        assert datetime.fromisoformat(case["received_at"]) == received
        assert case["status"] == "opened"

    analyst = token_for("analyst")
    async with httpx.AsyncClient(
        base_url=services.url("analytics"), headers=analyst, timeout=30
    ) as analytics:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            report = (await analytics.get("/v1/reports/complaints/types")).json()
            counts = {i["category"]: i["count"] for i in report["items"]}
            if (
                report["total"] >= summary.accepted + before["total"]
                and "unclassified" not in counts
            ):
                break
            assert loop.time() < deadline, report
            await asyncio.sleep(0.5)
    assert report["total"] == summary.accepted + before["total"]
    by_category: dict[str, int] = {}
    for complaint_id in summary.accepted_ids:
        category = cases[complaint_id]["category"]
        by_category[category] = by_category.get(category, 0) + 1
    added = {
        k: v - before_counts.get(k, 0) for k, v in counts.items() if v != before_counts.get(k, 0)
    }
    assert added == by_category
    assert abs(sum(i["share"] for i in report["items"]) - 1.0) < 0.01


async def test_bad_input_is_refused_and_stores_nothing(
    services: ServiceSupervisor, token_for
) -> None:
    headers = token_for("intake_client")
    async with httpx.AsyncClient(
        base_url=services.url("intake"), headers=headers, timeout=30
    ) as intake:
        cases = [
            (
                {
                    "channel": "carrier_pigeon",
                    "customer": {"customer_number": "1"},
                    "description": "x",
                },
                "channel",
            ),
            (
                {"channel": "web", "customer": {"customer_number": "1"}, "description": ""},
                "description",
            ),
            (
                {
                    "channel": "web",
                    "customer": {"customer_number": "1"},
                    "description": "x" * 20001,
                },
                "description",
            ),
            (
                {
                    "channel": "letter",
                    "customer": {"customer_number": "1"},
                    "description": "late letter",
                    "received_at": "2999-01-01T00:00:00+08:00",
                },
                "received_at",
            ),
        ]
        for body, field in cases:
            r = await intake.post("/v1/complaints", json=body)
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert field in r.json()["detail"]
        r = await intake.post(
            "/v1/complaints", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        r = await intake.post(
            "/v1/complaints",
            content=b'{"description": "' + b"x" * 2_000_000 + b'"}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
    async with httpx.AsyncClient(
        base_url=services.url("analytics"), headers=token_for("analyst"), timeout=30
    ) as a:
        before = (await a.get("/v1/reports/complaints/types")).json()["total"]
        await asyncio.sleep(2)
        after = (await a.get("/v1/reports/complaints/types")).json()["total"]
    assert before == after
