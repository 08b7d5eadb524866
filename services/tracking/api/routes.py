"""HTTP routes of tracking (ARCHITECTURE.md §5).

Cases, their actions and timeline, the due-date calculator, the calendar overrides and the
suggestion workflow. Every route declares its roles; routes commit, services never do.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel

from services.tracking.domain import actions as case_actions
from services.tracking.domain import calendar as calendar_service
from services.tracking.domain import service as case_service
from services.tracking.domain import suggestions as suggestion_service
from services.tracking.domain.calendar import CalendarHolder
from services.tracking.domain.exceptions import InvalidAction
from services.tracking.settings import TrackingSettings
from shared.app import SessionDep
from shared.auth import Principal, require_roles
from shared.errors import AppError
from shared.workcalendar import WorkingDayCalendar

router = APIRouter(prefix="/v1", tags=["tracking"])
Staff = Annotated[Principal, require_roles("agent", "supervisor", "analyst", "auditor")]
Handlers = Annotated[Principal, require_roles("agent", "supervisor")]
Supervisor = Annotated[Principal, require_roles("supervisor")]
SlaState = Literal["on_track", "at_risk", "breached", "met", "missed"]


class DueDateRead(BaseModel):
    """The deadline of a complaint received at ``received_at``."""

    received_at: datetime
    working_days: int
    due_date: date
    due_at: datetime
    provisional: bool
    paused_working_days: int = 0


class NaiveDateTime(AppError):
    """A date-time without a UTC offset."""

    code = "naive_datetime"
    status = 422
    title = "Date-time needs a UTC offset"


def _holder(request: Request) -> CalendarHolder:
    holder: CalendarHolder = request.app.state.calendar_holder
    return holder


def _settings(request: Request) -> TrackingSettings:
    settings: TrackingSettings = request.app.state.settings
    return settings


# -- cases --------------------------------------------------------------------------------


@router.get("/cases", response_model=case_service.CasePage, summary="Case queue, by due time")
async def list_cases(
    request: Request,
    session: SessionDep,
    _: Staff,
    status: str | None = None,
    department: str | None = None,
    category: str | None = None,
    priority: str | None = None,
    handler: str | None = None,
    sla_state: SlaState | None = None,
    due_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> case_service.CasePage:
    """Return the queue: cases filtered and ordered by the resolution clock's ``due_at``.

    Filters: status, department, category, priority, handler, clock state (``sla_state`` of
    the current resolution clock) and ``due_before``.
    """
    if due_before is not None and due_before.tzinfo is None:
        raise NaiveDateTime("due_before must carry a UTC offset")
    async with session.begin():
        calendar = await _holder(request).refresh(session)
        return await case_service.list_cases(
            session=session,
            calendar=calendar,
            now=datetime.now(UTC),
            filters={
                "status": status,
                "department": department,
                "category": category,
                "priority": priority,
                "handler": handler,
            },
            due_before=due_before,
            sla_state=sla_state,
            limit=limit,
            offset=offset,
        )


@router.get("/cases/{case_id}", response_model=case_service.CaseRead, summary="One case")
async def get_case(
    case_id: str, request: Request, session: SessionDep, _: Staff
) -> case_service.CaseRead:
    """Return the case with due_at, due_date, sla_state and working_days_left per clock."""
    async with session.begin():
        calendar = await _holder(request).refresh(session)
        return await case_service.get_case(
            session=session, calendar=calendar, case_id=case_id, now=datetime.now(UTC)
        )


@router.get(
    "/cases/{case_id}/timeline",
    response_model=list[case_service.TimelineEntry],
    summary="A case's timeline",
)
async def get_timeline(
    case_id: str, session: SessionDep, _: Staff
) -> list[case_service.TimelineEntry]:
    """Return every transition, SLA alert and recomputation of the case, oldest first."""
    async with session.begin():
        return await case_service.timeline(session=session, case_id=case_id)


@router.post(
    "/cases/{case_id}/actions",
    response_model=case_service.CaseRead,
    summary="Act on a case (a transition of the lifecycle)",
    responses={409: {"description": "Not allowed in the current state (names the allowed ones)"}},
)
async def act_on_case(
    case_id: str,
    request: Request,
    session: SessionDep,
    principal: Handlers,
    body: Annotated[case_actions.CaseAction, Body()],
) -> case_service.CaseRead:
    """Apply one action to the case and return it.

    Actions: acknowledge, assign, start_investigation, request_info, receive_info,
    determine_responsibility, resolve, notify_customer, close, withdraw, escalate, merge,
    reopen, identify_staff, request_extension, approve_extension, reject_extension. Roles
    per action are in docs/tracking.md.
    """
    now = datetime.now(UTC)
    async with session.begin():
        calendar = await _holder(request).refresh(session)
        await case_actions.apply_action(
            session=session,
            calendar=calendar,
            settings=_settings(request),
            case_id=case_id,
            action=body,
            actor=principal,
            now=now,
        )
        return await case_service.get_case(
            session=session, calendar=calendar, case_id=case_id, now=now
        )


@router.get("/sla/due-date", response_model=DueDateRead, summary="Due-date calculator")
async def due_date(
    request: Request,
    session: SessionDep,
    _: Staff,
    received_at: datetime,
    working_days: Annotated[int, Query(ge=1, le=60)] = 5,
) -> DueDateRead:
    """Return the due date of a complaint received at ``received_at`` (with offset).

    Uses the bank's calendar (the ``holidays`` package plus the stored overrides).
    """
    if received_at.tzinfo is None:
        raise NaiveDateTime("received_at must carry a UTC offset, e.g. 2026-09-30T10:00:00+08:00")
    async with session.begin():
        calendar: WorkingDayCalendar = await _holder(request).refresh(session)
    try:
        dl = calendar.deadline(received_at, working_days)
    except ValueError as exc:
        raise InvalidAction(str(exc)) from exc
    return DueDateRead(
        received_at=received_at,
        working_days=working_days,
        due_date=dl.due_date,
        due_at=dl.due_at,
        provisional=dl.provisional,
    )


# -- calendar -----------------------------------------------------------------------------


@router.get(
    "/calendar/overrides",
    response_model=list[calendar_service.OverrideRead],
    summary="The bank's calendar overrides",
)
async def list_overrides(
    session: SessionDep,
    _: Staff,
    year: Annotated[int | None, Query(ge=1950, le=2100)] = None,
    include_removed: bool = False,
) -> list[calendar_service.OverrideRead]:
    """Return the overrides (active; with ``include_removed`` the history too), by day."""
    async with session.begin():
        return await calendar_service.list_overrides(
            session=session, year=year, include_removed=include_removed
        )


@router.get(
    "/calendar/years/{year}",
    response_model=calendar_service.CalendarYearRead,
    summary="The working-day calendar of one year",
)
async def calendar_year(
    year: int, request: Request, session: SessionDep, _: Staff
) -> calendar_service.CalendarYearRead:
    """Return the year's rest weekdays, working weekend days, overrides, provisional flag."""
    async with session.begin():
        calendar = await _holder(request).refresh(session)
        return await calendar_service.year_view(session=session, calendar=calendar, year=year)


@router.post(
    "/calendar/overrides",
    response_model=calendar_service.CalendarChangeRead,
    status_code=201,
    summary="Add a holiday or a working day (audited; recomputes open cases)",
)
async def add_override(
    body: calendar_service.OverrideCreate,
    request: Request,
    session: SessionDep,
    principal: Supervisor,
) -> calendar_service.CalendarChangeRead:
    """Make one day a holiday or a working day, with a reason."""
    async with session.begin():
        return await calendar_service.add_override(
            session=session,
            holder=_holder(request),
            settings=_settings(request),
            body=body,
            actor=principal,
            now=datetime.now(UTC),
        )


@router.post(
    "/calendar/overrides/remove",
    response_model=calendar_service.CalendarChangeRead,
    summary="Remove a day's override (audited; recomputes open cases)",
)
async def remove_override(
    body: calendar_service.OverrideRemove,
    request: Request,
    session: SessionDep,
    principal: Supervisor,
) -> calendar_service.CalendarChangeRead:
    """Remove the active override of one day, with a reason (kept as history)."""
    async with session.begin():
        return await calendar_service.remove_override(
            session=session,
            holder=_holder(request),
            settings=_settings(request),
            body=body,
            actor=principal,
            now=datetime.now(UTC),
        )


@router.post(
    "/calendar/official-years",
    response_model=calendar_service.CalendarChangeRead,
    status_code=201,
    summary="Declare a year's schedule official (audited; recomputes provisional flags)",
)
async def declare_official_year(
    body: calendar_service.OfficialYearCreate,
    request: Request,
    session: SessionDep,
    principal: Supervisor,
) -> calendar_service.CalendarChangeRead:
    """Declare that the year's State Council notice has been entered."""
    async with session.begin():
        return await calendar_service.declare_official_year(
            session=session,
            holder=_holder(request),
            settings=_settings(request),
            body=body,
            actor=principal,
            now=datetime.now(UTC),
        )


# -- suggestions --------------------------------------------------------------------------


@router.get("/suggestions", response_model=suggestion_service.SuggestionPage, summary="Suggestions")
async def list_suggestions(
    session: SessionDep,
    _: Staff,
    status: str | None = None,
    department: str | None = None,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> suggestion_service.SuggestionPage:
    """Return suggestions filtered by status, department and category, newest first."""
    async with session.begin():
        return await suggestion_service.list_suggestions(
            session=session,
            status=status,
            department=department,
            category=category,
            limit=limit,
            offset=offset,
        )


@router.get(
    "/suggestions/{suggestion_id}",
    response_model=suggestion_service.SuggestionRead,
    summary="One suggestion",
)
async def get_suggestion(
    suggestion_id: str, session: SessionDep, _: Staff
) -> suggestion_service.SuggestionRead:
    """Return a suggestion with its evaluations, rewards and allowed actions."""
    async with session.begin():
        return await suggestion_service.get_suggestion(session=session, suggestion_id=suggestion_id)


@router.post(
    "/suggestions/{suggestion_id}/actions",
    response_model=suggestion_service.SuggestionRead,
    summary="Act on a suggestion",
)
async def act_on_suggestion(
    suggestion_id: str,
    request: Request,
    session: SessionDep,
    principal: Handlers,
    body: Annotated[suggestion_service.SuggestionAction, Body()],
) -> suggestion_service.SuggestionRead:
    """Apply one action: screen, evaluate, adopt, decline, plan, implement, notify, reward."""
    async with session.begin():
        calendar = await _holder(request).refresh(session)
        await suggestion_service.apply_action(
            session=session,
            calendar=calendar,
            settings=_settings(request),
            suggestion_id=suggestion_id,
            action=body,
            actor=principal,
            now=datetime.now(UTC),
        )
        return await suggestion_service.get_suggestion(session=session, suggestion_id=suggestion_id)
