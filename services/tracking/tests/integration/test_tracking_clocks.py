"""Named deadline cases (ARCHITECTURE.md §4, issue 5): the clocks a case really gets."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.tracking import tables
from services.tracking.domain import actions, clocks
from services.tracking.domain import service as case_service
from services.tracking.settings import TrackingSettings
from services.tracking.tests.tracking_helpers import open_case, outbox_payloads
from shared.auth import Principal
from shared.workcalendar import WorkingDayCalendar

CST = timezone(timedelta(hours=8))
CAL = WorkingDayCalendar()
SUP = Principal(subject="sup-clock", roles=frozenset({"supervisor"}))
ACTION = TypeAdapter(actions.CaseAction)


async def run(
    sm: async_sessionmaker[AsyncSession],
    case_id: str,
    at: datetime,
    settings: TrackingSettings,
    **body: Any,
) -> str:
    async with sm() as session, session.begin():
        return await actions.apply_action(
            session=session,
            calendar=CAL,
            settings=settings,
            case_id=case_id,
            action=ACTION.validate_python(body),
            actor=SUP,
            now=at,
        )


async def read(sm: async_sessionmaker[AsyncSession], case_id: str, now: datetime) -> Any:
    async with sm() as session, session.begin():
        return await case_service.get_case(session=session, calendar=CAL, case_id=case_id, now=now)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-09-30T10:00:00+08:00", "2026-10-13"),
        ("2026-09-20T10:00:00+08:00", "2026-09-28"),
        ("2026-02-15T10:00:00+08:00", "2026-02-28"),
        ("2026-03-05T16:30:00Z", "2026-03-13"),
        ("2026-06-15T10:00:00+08:00", "2026-06-23"),
    ],
)
async def test_architecture_examples_on_the_api_and_on_cases(
    tracking_client: AsyncClient,
    tsm: async_sessionmaker[AsyncSession],
    token_for: Any,
    received: str,
    due: str,
) -> None:
    r = await tracking_client.get(
        "/v1/sla/due-date", params={"received_at": received}, headers=token_for("agent")
    )
    assert r.status_code == 200
    assert r.json()["due_date"] == due
    case_id = await open_case(tsm, datetime.fromisoformat(received.replace("Z", "+00:00")))
    case = (await tracking_client.get(f"/v1/cases/{case_id}", headers=token_for("agent"))).json()
    assert case["due_date"] == due
    assert datetime.fromisoformat(case["due_at"]) == datetime.combine(
        date.fromisoformat(due) + timedelta(days=1), datetime.min.time(), tzinfo=CST
    )
    kinds = {c["kind"] for c in case["clocks"]}
    assert kinds == {"resolution", "acknowledgement", "regulatory"}


async def test_due_date_calculator_rejects_naive_instants(
    tracking_client: AsyncClient, token_for: Any
) -> None:
    r = await tracking_client.get(
        "/v1/sla/due-date",
        params={"received_at": "2026-09-30T10:00:00"},
        headers=token_for("agent"),
    )
    assert r.status_code == 422
    assert r.json()["code"] == "naive_datetime"


async def test_two_working_days_awaiting_customer_move_due_from_0623_to_0625(
    tsm: async_sessionmaker[AsyncSession],
) -> None:
    settings = TrackingSettings(pause_while_awaiting_customer=True)
    received = datetime(2026, 6, 15, 10, 0, tzinfo=CST)  # Monday
    case_id = await open_case(tsm, received, settings=settings)
    assert (await read(tsm, case_id, received)).due_date == date(2026, 6, 23)
    t = datetime(2026, 6, 16, 9, 0, tzinfo=CST)
    await run(tsm, case_id, t, settings, action="acknowledge")
    await run(tsm, case_id, t, settings, action="assign", handler="agent-p")
    await run(tsm, case_id, t, settings, action="start_investigation")
    await run(
        tsm,
        case_id,
        datetime(2026, 6, 17, 0, 0, tzinfo=CST),
        settings,
        action="request_info",
        reason="need the card statement",
    )
    paused = await read(tsm, case_id, datetime(2026, 6, 18, 12, 0, tzinfo=CST))
    res = next(c for c in paused.clocks if c.kind == "resolution")
    assert res.paused
    await run(
        tsm, case_id, datetime(2026, 6, 19, 0, 0, tzinfo=CST), settings, action="receive_info"
    )
    case = await read(tsm, case_id, datetime(2026, 6, 19, 9, 0, tzinfo=CST))
    res = next(c for c in case.clocks if c.kind == "resolution")
    assert case.due_date == date(2026, 6, 25)
    assert res.paused_working_days == 2
    assert not res.paused
    regulatory = next(c for c in case.clocks if c.kind == "regulatory")
    assert regulatory.due_date == date(2026, 6, 30)  # 15 calendar days, never paused
    async with tsm() as session:
        audit_actions = (
            await session.execute(
                select(tables.audit_log.c.action).where(tables.audit_log.c.subject_id == case_id)
            )
        ).scalars()
        assert {"case.pause_start", "case.pause_end"} <= set(audit_actions)


async def test_pause_is_off_by_default(tsm: async_sessionmaker[AsyncSession]) -> None:
    settings = TrackingSettings()
    case_id = await open_case(tsm, datetime(2026, 6, 15, 10, 0, tzinfo=CST), settings=settings)
    t = datetime(2026, 6, 16, 9, 0, tzinfo=CST)
    await run(tsm, case_id, t, settings, action="assign", handler="agent-p")
    await run(tsm, case_id, t, settings, action="start_investigation")
    await run(
        tsm, case_id, datetime(2026, 6, 17, tzinfo=CST), settings, action="request_info", reason="x"
    )
    await run(tsm, case_id, datetime(2026, 6, 19, tzinfo=CST), settings, action="receive_info")
    assert (await read(tsm, case_id, t)).due_date == date(2026, 6, 23)


async def test_reopened_on_0420_is_not_overdue_and_is_due_0427(
    tsm: async_sessionmaker[AsyncSession],
) -> None:
    settings = TrackingSettings()
    case_id = await open_case(tsm, datetime(2026, 3, 30, 10, 0, tzinfo=CST), settings=settings)
    t = datetime(2026, 4, 1, 10, 0, tzinfo=CST)
    for body in (
        {"action": "acknowledge"},
        {"action": "assign", "handler": "agent-r"},
        {"action": "start_investigation"},
        {"action": "determine_responsibility", "responsibility": "not_established"},
        {"action": "resolve", "remedy": "explanation", "summary": "explained the fee"},
        {"action": "notify_customer", "channel": "phone"},
        {"action": "close"},
    ):
        await run(tsm, case_id, t, settings, **body)
    reopened_at = datetime(2026, 4, 20, 15, 45, tzinfo=CST)
    status = await run(
        tsm, case_id, reopened_at, settings, action="reopen", reason="customer_request"
    )
    assert status == "reopened"
    case = await read(tsm, case_id, reopened_at)
    current = max((c for c in case.clocks if c.kind == "resolution"), key=lambda c: c.round)
    assert current.round == 2
    assert current.due_date == date(2026, 4, 27)
    assert current.state == "on_track"
    assert case.sla_state == "on_track"
    assert current.working_days_left is not None
    assert current.working_days_left > 5  # the rest of 20 Apr plus 21-27 Apr
    first = next(c for c in case.clocks if c.kind == "resolution" and c.round == 1)
    assert first.state == "met"  # the time it spent closed never counts against it
    payload = (await outbox_payloads(tsm, case_id, "cases.reopened.v1"))[0]
    assert payload["due_date"] == "2026-04-27"
    assert clocks.state({"due_at": current.due_at, "warn_at": current.warn_at}, reopened_at) == (
        "on_track"
    )
