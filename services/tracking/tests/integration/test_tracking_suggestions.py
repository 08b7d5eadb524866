"""The suggestion workflow through ``POST /v1/suggestions/{id}/actions``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking import tables
from services.tracking.domain import suggestions as suggestion_service
from services.tracking.tests.tracking_helpers import outbox_payloads
from shared.events.contracts.complaints import SuggestionScreened


async def new_suggestion(sm: async_sessionmaker[AsyncSession], department: str = "digital") -> str:
    sid = str(uuid.uuid4())
    async with sm() as session, session.begin():
        created = await suggestion_service.receive(
            session=session,
            screened=SuggestionScreened(
                suggestion_id=sid,
                reference=f"S-{sid[:8]}",
                channel="web",
                received_at=datetime.now(UTC),
                customer_key="cus_" + sid[:10],
                category="digital_channels",
                product_line="mobile_banking",
                department=department,
                confidence=0.8,
            ),
            now=datetime.now(UTC),
        )
    assert created
    return sid


async def act(client: AsyncClient, sid: str, headers: dict[str, str], **body: Any) -> Any:
    return await client.post(f"/v1/suggestions/{sid}/actions", json=body, headers=headers)


async def test_adopted_suggestion_is_planned_implemented_notified_and_rewarded(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    sid = await new_suggestion(tsm)
    agent = token_for("agent", subject="rev-1")
    agent2 = token_for("agent", subject="rev-2")
    sup = token_for("supervisor", subject="sup-s")
    assert (
        await act(tracking_client, sid, agent, action="screen", accepted=True)
    ).status_code == 200
    r = await act(tracking_client, sid, sup, action="adopt")
    assert r.status_code == 409
    assert r.json()["allowed_actions"] == ["evaluate"]
    r = await act(
        tracking_client,
        sid,
        agent,
        action="evaluate",
        feasibility=5,
        reasonableness=4,
        expected_effect=3,
    )
    assert r.status_code == 200, r.text
    assert r.json()["score"] == 4.1  # 0.4*5 + 0.3*4 + 0.3*3
    r = await act(
        tracking_client,
        sid,
        agent2,
        action="evaluate",
        feasibility=3,
        reasonableness=3,
        expected_effect=3,
    )
    assert r.json()["score"] == 3.55  # mean of the two reviewers
    assert len(r.json()["evaluations"]) == 2
    r = await act(
        tracking_client,
        sid,
        agent,
        action="evaluate",
        feasibility=6,
        reasonableness=4,
        expected_effect=3,
    )
    assert r.status_code == 422  # scores are 1-5
    assert (await act(tracking_client, sid, agent, action="adopt")).status_code == 403
    assert (
        await act(tracking_client, sid, sup, action="adopt", reason="cheap, useful")
    ).status_code == 200
    r = await act(
        tracking_client,
        sid,
        sup,
        action="plan",
        department="digital",
        owner="pm-1",
        working_days=10,
    )
    assert r.status_code == 200
    assert r.json()["plan_due_date"] is not None
    r = await act(tracking_client, sid, agent, action="implement", effect_note="login time -30%")
    assert r.json()["status"] == "implemented"
    assert (
        await act(tracking_client, sid, agent, action="notify", channel="sms")
    ).status_code == 200
    r = await act(tracking_client, sid, sup, action="reward", reward_type="cash", amount_minor=0)
    assert r.status_code == 422
    r = await act(
        tracking_client,
        sid,
        sup,
        action="reward",
        reward_type="cash",
        amount_minor=20_000,
        currency="CNY",
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "rewarded"
    assert body["rewards"][0]["amount_minor"] == 20_000
    async with tsm() as session:
        ledger = (
            await session.execute(
                select(tables.reward_ledger).where(tables.reward_ledger.c.suggestion_id == sid)
            )
        ).all()
    assert [(x.reward_type, x.amount_minor, x.currency) for x in ledger] == [
        ("cash", 20_000, "CNY")
    ]
    decided = await outbox_payloads(tsm, sid, "suggestions.decided.v1")
    assert [(d["decision"], d["score"]) for d in decided] == [("adopted", 3.55)]
    implemented = await outbox_payloads(tsm, sid, "suggestions.implemented.v1")
    assert implemented[0]["on_time"] is True
    rewarded = await outbox_payloads(tsm, sid, "suggestions.rewarded.v1")
    assert rewarded[0]["amount_minor"] == 20_000
    notes = await outbox_payloads(tsm, sid, "customer.notifications.v1")
    assert [n["kind"] for n in notes] == ["suggestion_result", "reward"]
    listed = (
        await tracking_client.get("/v1/suggestions", params={"status": "rewarded"}, headers=agent)
    ).json()
    assert sid in {s["id"] for s in listed["items"]}


async def test_rejected_at_screening_needs_a_reason(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    sid = await new_suggestion(tsm)
    agent = token_for("agent")
    r = await act(tracking_client, sid, agent, action="screen", accepted=False)
    assert r.status_code == 422
    r = await act(tracking_client, sid, agent, action="screen", accepted=False, reason="duplicate")
    assert r.json()["status"] == "rejected"
    assert r.json()["allowed_actions"] == ["notify"]
    decided = await outbox_payloads(tsm, sid, "suggestions.decided.v1")
    assert decided[0]["decision"] == "rejected"
    assert decided[0]["reason"] == "duplicate"
    r = await tracking_client.post(
        f"/v1/suggestions/{uuid.uuid4()}/actions",
        json={"action": "notify", "channel": "sms"},
        headers=agent,
    )
    assert r.status_code == 404
