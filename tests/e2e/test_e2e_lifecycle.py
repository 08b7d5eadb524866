"""End to end, one complaint through its whole life across the five services (issue 6).

intake -> routing -> tracking (handling, result) -> followup (visit: unsatisfied) ->
tracking (reopened with a new clock, handled again, result) -> followup (second visit:
satisfied) -> tracking (closed) -> analytics (reopen and satisfaction counted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from shared.runner import ServiceSupervisor

pytestmark = pytest.mark.e2e


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float = 60.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_complaint_visit_reopen_second_handling_close(
    services: ServiceSupervisor, token_for
) -> None:
    intake = httpx.AsyncClient(
        base_url=services.url("intake"), headers=token_for("intake_client"), timeout=30
    )
    supervisor = httpx.AsyncClient(
        base_url=services.url("tracking"),
        headers=token_for("supervisor", subject="sup-1"),
        timeout=30,
    )
    handler = httpx.AsyncClient(
        base_url=services.url("tracking"), headers=token_for("agent", subject="agent-7"), timeout=30
    )
    caller = httpx.AsyncClient(
        base_url=services.url("followup"),
        headers=token_for("agent", subject="caller-3"),
        timeout=30,
    )
    analyst = httpx.AsyncClient(
        base_url=services.url("analytics"), headers=token_for("analyst"), timeout=30
    )
    try:
        r = await intake.post(
            "/v1/complaints",
            json={
                "channel": "phone",
                "customer": {"customer_number": "E2E-LIFE-001", "phone": "13912345678"},
                "description": "手机银行转账失败，钱被扣了但对方没收到，客服一直没有回复。",
            },
        )
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]

        async def case() -> dict[str, Any] | None:
            resp = await supervisor.get(f"/v1/cases/{case_id}")
            return resp.json() if resp.status_code == 200 else None

        first = await eventually(case, "the case to open")
        assert first["status"] == "opened"

        async def act(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
            resp = await client.post(f"/v1/cases/{case_id}/actions", json=body)
            assert resp.status_code == 200, (body["action"], resp.text)
            return resp.json()

        async def handle_once(remedy: str, amount: int) -> None:
            await act(handler, {"action": "acknowledge"})
            await act(supervisor, {"action": "assign", "handler": "agent-7"})
            await act(handler, {"action": "start_investigation"})
            await act(
                handler,
                {
                    "action": "determine_responsibility",
                    "responsibility": "bank",
                    "at_fault_unit": "payments_operations",
                },
            )
            body: dict[str, Any] = {
                "action": "resolve",
                "remedy": remedy,
                "summary": "transfer reversed and fee refunded",
            }
            if amount:
                body |= {"amount_minor": amount, "currency": "CNY"}
            await act(handler, body)
            await act(handler, {"action": "notify_customer", "channel": "phone"})

        # An illegal step first: closing an unhandled case is refused and changes nothing.
        resp = await handler.post(f"/v1/cases/{case_id}/actions", json={"action": "close"})
        assert resp.status_code == 409
        assert resp.json()["code"]

        await handle_once("apology", 0)

        async def visit(round_: int) -> dict[str, Any] | None:
            resp = await caller.get(
                "/v1/followups", params={"status": "due", "subject_id": case_id}
            )
            items = [v for v in resp.json()["items"] if v.get("round") == round_]
            return items[0] if items else None

        v1 = await eventually(lambda: visit(1), "the first follow-up visit")
        resp = await caller.post(
            f"/v1/followups/{v1['id']}/attempts",
            json={
                "result": "reached",
                "satisfied": False,
                "score": 2,
                "reason_code": "compensation_insufficient",
                "comment": "想要补偿，请回电 13912345678",
            },
        )
        assert resp.status_code == 201, resp.text

        async def reopened() -> dict[str, Any] | None:
            c = await case()
            return c if c and c["status"] == "reopened" else None

        again = await eventually(reopened, "the case to reopen")
        assert again["reopen_count"] == 1
        rounds = sorted(c["round"] for c in again["clocks"] if c["kind"] == "resolution")
        assert rounds == [1, 2]
        assert again["sla_state"] in ("on_track", "at_risk")
        assert again["priority"] < first["priority"] or first["priority"] == "P1"

        await handle_once("compensation", 5000)
        v2 = await eventually(lambda: visit(2), "the second follow-up visit")
        resp = await caller.post(
            f"/v1/followups/{v2['id']}/attempts",
            json={"result": "reached", "satisfied": True, "score": 5},
        )
        assert resp.status_code == 201, resp.text

        async def closed() -> dict[str, Any] | None:
            c = await case()
            return c if c and c["status"] == "closed" else None

        await eventually(closed, "the case to close")
        timeline = (await supervisor.get(f"/v1/cases/{case_id}/timeline")).json()
        actions = [
            e["action"] for e in (timeline["items"] if isinstance(timeline, dict) else timeline)
        ]
        assert actions.count("notify_customer") == 2
        assert "reopen" in actions or any("reopen" in a for a in actions)

        async def counted() -> dict[str, Any] | None:
            resp = await analyst.get("/v1/reports/complaints/handling")
            body = resp.json() if resp.status_code == 200 else None
            return body if body and body.get("reopened", body.get("reopen_count", 0)) else None

        handling = await eventually(counted, "analytics to count the reopen")
        assert handling
    finally:
        for c in (intake, supervisor, handler, caller, analyst):
            await c.aclose()
