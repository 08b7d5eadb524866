"""The complaint lifecycle through ``POST /v1/cases/{id}/actions`` on real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking import tables
from services.tracking.tests.tracking_helpers import open_case, outbox_payloads, outbox_types


def _now() -> datetime:
    return datetime.now(UTC)


async def act(client: AsyncClient, case_id: str, headers: dict[str, str], **body: Any) -> Any:
    return await client.post(f"/v1/cases/{case_id}/actions", json=body, headers=headers)


async def test_full_lifecycle_with_events_timeline_and_audit(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    case_id = await open_case(tsm, _now() - timedelta(hours=2))
    agent = token_for("agent", subject="agent-7")
    sup = token_for("supervisor", subject="sup-1")

    r = await act(tracking_client, case_id, agent, action="acknowledge")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "acknowledged"
    ack = next(c for c in body["clocks"] if c["kind"] == "acknowledgement")
    assert ack["stopped_at"] is not None
    assert ack["state"] == "met"

    r = await act(tracking_client, case_id, sup, action="assign", handler="agent-7")
    assert r.json()["handler"] == "agent-7"
    for step in (
        {"action": "start_investigation"},
        {"action": "determine_responsibility", "responsibility": "bank", "at_fault_unit": "cards"},
        {
            "action": "resolve",
            "remedy": "compensation",
            "amount_minor": 12_345,
            "currency": "CNY",
            "summary": "refund the double charge",
        },
        {"action": "notify_customer", "channel": "phone"},
    ):
        r = await act(tracking_client, case_id, agent, **step)
        assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "result_notified"
    assert body["compensation_minor"] == 12_345
    assert body["remedy"] == "compensation"
    res = next(c for c in body["clocks"] if c["kind"] == "resolution")
    assert res["state"] == "met"
    assert res["working_days_left"] is None

    r = await act(tracking_client, case_id, agent, action="close", expected_version=body["version"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "closed"

    types = await outbox_types(tsm, case_id)
    assert types.count("cases.status-changed.v1") == 7
    for t in (
        "cases.opened.v1",
        "cases.resolved.v1",
        "cases.result-notified.v1",
        "cases.closed.v1",
    ):
        assert types.count(t) == 1, (t, types)
    notes = await outbox_payloads(tsm, case_id, "customer.notifications.v1")
    assert [n["kind"] for n in notes] == ["acknowledgement", "result"]
    assert notes[0]["params"]["due_date"] == body["due_date"]
    assert notes[1]["params"]["remedy"] == "compensation"
    assert notes[1]["params"]["amount_minor"] == 12_345
    assert "regulator_hotline_12378" in notes[1]["params"]["recourse"]
    resolved = (await outbox_payloads(tsm, case_id, "cases.resolved.v1"))[0]
    assert resolved["on_time"] is True
    assert resolved["responsibility"] == "bank"

    timeline = (await tracking_client.get(f"/v1/cases/{case_id}/timeline", headers=agent)).json()
    assert [e["action"] for e in timeline] == [
        "open",
        "acknowledge",
        "assign",
        "start_investigation",
        "determine_responsibility",
        "resolve",
        "notify_customer",
        "close",
    ]
    assert timeline[-1]["from_status"] == "result_notified"

    audit = await tracking_client.get(
        "/v1/audit", params={"subject_id": case_id}, headers=token_for("auditor")
    )
    assert audit.status_code == 200
    assert audit.json()["total"] == 7
    assert {e["action"] for e in audit.json()["items"]} >= {"case.resolve", "case.close"}


async def test_illegal_transition_is_409_naming_state_and_allowed_actions(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    case_id = await open_case(tsm, _now())
    r = await act(
        tracking_client,
        case_id,
        token_for("agent"),
        action="resolve",
        remedy="apology",
        summary="sorry",
    )
    assert r.status_code == 409
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "illegal_transition"
    assert problem["current_state"] == "opened"
    assert "acknowledge" in problem["allowed_actions"]
    assert "opened" in problem["detail"]
    assert "acknowledge" in problem["detail"]
    assert await outbox_types(tsm, case_id) == ["cases.opened.v1"]


async def test_roles_handler_and_recusal(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    case_id = await open_case(tsm, _now())
    agent = token_for("agent", subject="agent-1")
    sup = token_for("supervisor", subject="sup-2")
    # assign is for supervisors; analysts may not act at all
    assert (
        await act(tracking_client, case_id, agent, action="assign", handler="x")
    ).status_code == 403
    r = await act(tracking_client, case_id, token_for("analyst"), action="acknowledge")
    assert r.status_code == 403
    # the complaint is about agent-9: they may neither be assigned nor act
    r = await act(tracking_client, case_id, agent, action="identify_staff", staff_ids=["agent-9"])
    assert r.status_code == 200
    assert r.json()["involved_staff"] == ["agent-9"]
    r = await act(tracking_client, case_id, sup, action="assign", handler="agent-9")
    assert r.status_code == 409
    assert r.json()["code"] == "recusal_required"
    r = await act(
        tracking_client, case_id, token_for("agent", subject="agent-9"), action="acknowledge"
    )
    assert r.status_code == 409
    assert r.json()["code"] == "recusal_required"
    # an agent who is not the handler may not investigate
    assert (
        await act(tracking_client, case_id, sup, action="assign", handler="agent-2")
    ).status_code == 200
    r = await act(tracking_client, case_id, agent, action="start_investigation")
    assert r.status_code == 403
    assert r.json()["code"] == "action_forbidden"
    r = await act(
        tracking_client,
        case_id,
        token_for("agent", subject="agent-2"),
        action="start_investigation",
    )
    assert r.status_code == 200


async def test_bad_input_is_4xx_and_changes_nothing(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    case_id = await open_case(tsm, _now())
    sup = token_for("supervisor")
    for body in (
        {"action": "fly"},
        {"action": "assign"},
        {"action": "assign", "handler": "a", "extra": 1},
        {"action": "merge", "into_case_id": "not-a-uuid"},
    ):
        r = await act(tracking_client, case_id, sup, **body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
    r = await act(tracking_client, case_id, sup, action="acknowledge", expected_version=99)
    assert r.status_code == 409
    assert r.json()["code"] == "version_conflict"
    r = await tracking_client.post(
        "/v1/cases/7b0e7d1e-0000-4000-8000-000000000000/actions",
        json={"action": "acknowledge"},
        headers=sup,
    )
    assert r.status_code == 404
    # compensation without an amount
    for step in (
        {"action": "assign", "handler": "h"},
        {"action": "start_investigation"},
        {"action": "determine_responsibility", "responsibility": "customer"},
    ):
        assert (await act(tracking_client, case_id, sup, **step)).status_code == 200
    r = await act(
        tracking_client, case_id, sup, action="resolve", remedy="compensation", summary="x"
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_action"
    r = await act(
        tracking_client,
        case_id,
        sup,
        action="determine_responsibility",
        responsibility="bank",
    )
    assert r.status_code == 409  # already determined: not allowed from that state
    case = (await tracking_client.get(f"/v1/cases/{case_id}", headers=sup)).json()
    assert case["status"] == "responsibility_determined"
    assert case["remedy"] is None
    assert case["version"] == 4


async def test_withdraw_merge_escalate_and_reopen(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    sup = token_for("supervisor", subject="sup-3")
    ids = [await open_case(tsm, _now()) for _ in range(3)]
    a, b, c = ids
    r = await act(tracking_client, a, sup, action="withdraw", reason="customer withdrew")
    assert r.json()["status"] == "withdrawn"
    assert all(clk["stopped_at"] for clk in r.json()["clocks"])
    r = await act(tracking_client, b, sup, action="merge", into_case_id=a)
    assert r.status_code == 422  # a is withdrawn: merge into an open case only
    r = await act(tracking_client, b, sup, action="merge", into_case_id=c)
    assert r.json()["status"] == "merged"
    assert r.json()["merged_into"] == c
    closed = await outbox_payloads(tsm, b, "cases.closed.v1")
    assert closed[0]["outcome"] == "merged"
    tl = (await tracking_client.get(f"/v1/cases/{c}/timeline", headers=sup)).json()
    assert tl[-1]["action"] == "merged_in"
    assert tl[-1]["details"]["from_case_id"] == b

    r = await act(tracking_client, c, sup, action="escalate", reason="VIP customer")
    assert r.json()["status"] == "escalated"
    for step in (
        {"action": "assign", "handler": "sup-3"},
        {"action": "start_investigation"},
        {"action": "determine_responsibility", "responsibility": "third_party"},
        {"action": "resolve", "remedy": "explanation", "summary": "network outage upstream"},
        {"action": "notify_customer", "channel": "email"},
        {"action": "reopen", "reason": "customer_request"},
    ):
        r = await act(tracking_client, c, sup, **step)
        assert r.status_code == 200, (step, r.text)
    body = r.json()
    assert body["status"] == "reopened"
    assert body["reopen_count"] == 1
    assert body["priority"] == "P2"
    rounds = sorted(clk["round"] for clk in body["clocks"] if clk["kind"] == "resolution")
    assert rounds == [1, 2]
    assert body["sla_state"] == "on_track"
    assert body["working_days_left"] > 4
    reopened = await outbox_payloads(tsm, c, "cases.reopened.v1")
    assert reopened[0]["round"] == 2
    assert reopened[0]["reason"] == "customer_request"


async def test_extension_needs_a_second_person_and_keeps_on_time_honest(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    case_id = await open_case(tsm, _now())
    sup1 = token_for("supervisor", subject="sup-a")
    sup2 = token_for("supervisor", subject="sup-b")
    before = (await tracking_client.get(f"/v1/cases/{case_id}", headers=sup1)).json()
    r = await act(
        tracking_client, case_id, sup1, action="request_extension", working_days=3, reason="audit"
    )
    assert r.status_code == 200, r.text
    r = await act(tracking_client, case_id, sup1, action="approve_extension")
    assert r.status_code == 403  # four eyes
    r = await act(tracking_client, case_id, sup2, action="approve_extension")
    assert r.status_code == 200, r.text
    after = r.json()
    res = next(c for c in after["clocks"] if c["kind"] == "resolution")
    assert res["extension_working_days"] == 3
    assert res["original_due_at"] == before["due_at"]
    assert after["due_date"] > before["due_date"]
    r = await act(tracking_client, case_id, sup2, action="approve_extension")
    assert r.status_code == 409  # nothing pending
    notes = await outbox_payloads(tsm, case_id, "customer.notifications.v1")
    assert notes[-1]["kind"] == "extension"
    assert notes[-1]["params"]["due_date"] == after["due_date"]
    async with tsm() as session:
        n = await session.scalar(
            select(func.count())
            .select_from(tables.case_extension)
            .where(tables.case_extension.c.case_id == case_id)
        )
    assert n == 1


async def test_audit_log_is_append_only(tsm: async_sessionmaker[AsyncSession]) -> None:
    import pytest
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="append-only"):
        async with tsm() as session, session.begin():
            await session.execute(text("DELETE FROM tracking.audit_log"))
