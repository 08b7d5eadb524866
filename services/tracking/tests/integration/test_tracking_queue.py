"""The handlers' queue: ``GET /v1/cases`` filters, ordered by the resolution due time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking.tests.tracking_helpers import open_case


async def test_queue_filters_and_order(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    dept = "q-" + uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    overdue = await open_case(tsm, datetime(2026, 6, 1, 2, tzinfo=UTC), department=dept)
    fresh = await open_case(tsm, now, department=dept, priority="P1", category="fees_and_charges")
    middle = await open_case(tsm, now - timedelta(days=3), department=dept)
    sup = token_for("supervisor")
    r = await tracking_client.post(
        f"/v1/cases/{middle}/actions", json={"action": "assign", "handler": "h-q"}, headers=sup
    )
    assert r.status_code == 200

    async def ids(**params: Any) -> list[str]:
        r = await tracking_client.get(
            "/v1/cases", params={"department": dept, **params}, headers=token_for("analyst")
        )
        assert r.status_code == 200, r.text
        body = r.json()
        if "limit" not in params:
            assert body["total"] == len(body["items"])
        return [c["id"] for c in body["items"]]

    assert await ids() == [overdue, middle, fresh]  # by due_at
    assert await ids(status="assigned") == [middle]
    assert await ids(handler="h-q") == [middle]
    assert await ids(priority="P1") == [fresh]
    assert await ids(category="fees_and_charges") == [fresh]
    assert await ids(sla_state="breached") == [overdue]
    assert set(await ids(sla_state="on_track")) | set(await ids(sla_state="at_risk")) == {
        middle,
        fresh,
    }
    assert await ids(due_before=(now - timedelta(days=30)).isoformat()) == [overdue]
    assert await ids(limit=1, offset=1) == [middle]
    r = await tracking_client.get("/v1/cases", params={"sla_state": "late"}, headers=sup)
    assert r.status_code == 422
    r = await tracking_client.get(
        "/v1/cases", params={"due_before": "2026-01-01T00:00"}, headers=sup
    )
    assert r.status_code == 422
    r = await tracking_client.get("/v1/cases")
    assert r.status_code == 401
    metrics = (await tracking_client.get("/metrics")).text
    assert 'tracking_case_transitions_total{action="assign"}' in metrics
    assert "tracking_provisional_due_dates_total" in metrics
