"""Calendar overrides: stored through the API, audited, recomputing open cases' due dates and
withdrawing alerts that no longer hold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from httpx import AsyncClient
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking import tables
from services.tracking.domain import calendar as calendar_service
from services.tracking.domain.calendar import CalendarHolder
from services.tracking.settings import TrackingSettings
from services.tracking.tests.tracking_helpers import open_case, outbox_payloads
from shared.auth import Principal

CST = timezone(timedelta(hours=8))
SUP = Principal(subject="sup-cal", roles=frozenset({"supervisor"}))


async def test_override_moves_due_date_and_withdraws_a_breach_that_no_longer_holds(
    tsm: async_sessionmaker[AsyncSession],
) -> None:
    settings = TrackingSettings()
    case_id = await open_case(tsm, datetime(2026, 11, 2, 10, 0, tzinfo=CST))  # due Mon 11-09
    k = tables.case_clock
    where = and_(k.c.case_id == case_id, k.c.kind == "resolution")
    async with tsm() as session, session.begin():  # as the sweep left it on 10 Nov
        await session.execute(
            update(k)
            .where(where)
            .values(
                warned_at=datetime(2026, 11, 9, 0, 5, tzinfo=CST),
                breached_at=datetime(2026, 11, 10, 0, 0, 30, tzinfo=CST),
                next_check_at=None,
            )
        )
    now = datetime(2026, 11, 10, 9, 0, tzinfo=CST)
    holder = CalendarHolder("Asia/Shanghai")
    body = calendar_service.OverrideCreate(day=date(2026, 11, 5), kind="holiday", reason="typhoon")
    async with tsm() as session, session.begin():
        result = await calendar_service.add_override(
            session=session, holder=holder, settings=settings, body=body, actor=SUP, now=now
        )
    assert result.recompute.breaches_withdrawn >= 1
    async with tsm() as session:
        row = (await session.execute(select(k).where(where))).one()
    assert row.due_date == date(2026, 11, 10)
    assert row.breached_at is None
    assert row.warned_at is not None  # one working day left still holds: warning stays
    assert row.next_check_at == row.due_at
    withdrawn = await outbox_payloads(tsm, case_id, "cases.sla-withdrawn.v1")
    assert [w["alert"] for w in withdrawn] == ["breach"]
    assert withdrawn[0]["due_at"].startswith("2026-11-10T16:00")
    ob = tables.outbox
    async with tsm() as session:
        topic = await session.scalar(
            select(ob.c.topic).where(ob.c.key == case_id, ob.c.type == "cases.sla-withdrawn.v1")
        )
    assert topic == "cases.sla-breached"
    # removing the override restores the due date (the breach is for the sweep to find again)
    async with tsm() as session, session.begin():
        await calendar_service.remove_override(
            session=session,
            holder=holder,
            settings=settings,
            body=calendar_service.OverrideRemove(
                day=date(2026, 11, 5), reason="entered by mistake"
            ),
            actor=SUP,
            now=now,
        )
    async with tsm() as session:
        row = (await session.execute(select(k).where(where))).one()
    assert row.due_date == date(2026, 11, 9)
    assert row.next_check_at == row.due_at


async def test_calendar_api_overrides_official_year_audit_and_conflicts(
    tracking_client: AsyncClient, tsm: async_sessionmaker[AsyncSession], token_for: Any
) -> None:
    sup = token_for("supervisor", subject="sup-api")
    agent = token_for("agent")
    case_id = await open_case(tsm, datetime(2027, 3, 1, 10, 0, tzinfo=CST))  # Monday
    case = (await tracking_client.get(f"/v1/cases/{case_id}", headers=agent)).json()
    assert case["provisional"] is True
    due_before = case["due_date"]
    year = (await tracking_client.get("/v1/calendar/years/2027", headers=agent)).json()
    assert year["provisional"] is True

    r = await tracking_client.post(
        "/v1/calendar/overrides",
        json={"day": "2027-03-03", "kind": "holiday", "reason": "bank closure"},
        headers=sup,
    )
    assert r.status_code == 201, r.text
    assert r.json()["recompute"]["due_dates_changed"] >= 1
    case = (await tracking_client.get(f"/v1/cases/{case_id}", headers=agent)).json()
    assert case["due_date"] > due_before
    # same day again: conflict, nothing changes; agents may not change the calendar
    r = await tracking_client.post(
        "/v1/calendar/overrides",
        json={"day": "2027-03-03", "kind": "working_day", "reason": "x"},
        headers=sup,
    )
    assert r.status_code == 409
    assert r.json()["code"] == "calendar_conflict"
    r = await tracking_client.post(
        "/v1/calendar/overrides",
        json={"day": "2027-03-04", "kind": "holiday", "reason": "x"},
        headers=agent,
    )
    assert r.status_code == 403
    r = await tracking_client.post(
        "/v1/calendar/overrides", json={"day": "2027-03-04", "kind": "nap"}, headers=sup
    )
    assert r.status_code == 422
    listed = (
        await tracking_client.get("/v1/calendar/overrides", params={"year": 2027}, headers=agent)
    ).json()
    assert [(o["day"], o["kind"]) for o in listed] == [("2027-03-03", "holiday")]

    r = await tracking_client.post(
        "/v1/calendar/official-years",
        json={"year": 2027, "reason": "State Council notice for 2027 entered"},
        headers=sup,
    )
    assert r.status_code == 201, r.text
    case = (await tracking_client.get(f"/v1/cases/{case_id}", headers=agent)).json()
    assert case["provisional"] is False
    year = (await tracking_client.get("/v1/calendar/years/2027", headers=agent)).json()
    assert year["provisional"] is False
    assert "2027-03-03" in year["rest_days_on_weekdays"]

    r = await tracking_client.post(
        "/v1/calendar/overrides/remove",
        json={"day": "2027-03-03", "reason": "closure cancelled"},
        headers=sup,
    )
    assert r.status_code == 200
    case = (await tracking_client.get(f"/v1/cases/{case_id}", headers=agent)).json()
    assert case["due_date"] == due_before
    r = await tracking_client.post(
        "/v1/calendar/overrides/remove", json={"day": "2027-03-03", "reason": "again"}, headers=sup
    )
    assert r.status_code == 409

    audit = (
        await tracking_client.get(
            "/v1/audit", params={"actor": "sup-api"}, headers=token_for("auditor")
        )
    ).json()
    assert [e["action"] for e in reversed(audit["items"])] == [
        "calendar.override_add",
        "calendar.official_year_add",
        "calendar.override_remove",
    ]
    tl = (await tracking_client.get(f"/v1/cases/{case_id}/timeline", headers=agent)).json()
    assert [e["action"] for e in tl].count("due_recomputed") >= 3
    assert datetime.now(UTC)  # the API used the real clock; nothing here depends on it
